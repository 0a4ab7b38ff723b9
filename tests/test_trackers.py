"""Trackers read back from their real stores: TensorBoard event files through tensorboard's
event reader, MLflow through MlflowClient on a local file store, W&B's offline run file through
its own protobuf records. No mock of any tracker library."""

from __future__ import annotations

import dataclasses
import struct
import warnings
from pathlib import Path

import pytest

from bertft.ablation.runner import run_trial
from bertft.ablation.spec import expand, load_spec
from bertft.trackers import PARAM_LIMIT, flatten

SPEC = """
name = "tracked"
seeds = [0]
[base]
model = "tiny-bert"
task = "text-file"
train_file = "{csv}"
max_length = 16
batch_size = 8
epochs = 2
progress = false
save_model = false
report_to = {report_to}
[grid]
head_lr = [1e-3]
"""


def _trial(tmp_path: Path, report_to: str):
    csv = tmp_path / "data.csv"
    rows = "".join(f"{'good' if i % 2 else 'bad'} text number {i},{'ab'[i % 2]}\n"
                   for i in range(40))
    csv.write_text("text,label\n" + rows, encoding="utf-8")
    spec_path = tmp_path / "tracked.toml"
    spec_path.write_text(SPEC.format(csv=csv, report_to=report_to), encoding="utf-8")
    spec = load_spec(spec_path)
    return expand(spec)[0], spec


def _wandb_records(path: Path) -> list:
    """The protobuf records of a .wandb file (LevelDB log format: 32 KiB blocks of records
    with a 7-byte header: crc32, length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, pos, chunk, out = path.read_bytes(), 7, b"", []
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if left < 7 or (kind == 0 and length == 0):
            pos += left
            continue
        chunk += raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


def test_a_trial_is_one_run_in_each_tracker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    trial, spec = _trial(tmp_path, '["tensorboard", "mlflow", "wandb"]')
    root = tmp_path / "results"
    result = run_trial(trial, spec, tracking_root=root)
    assert result.status == "passed", result.error
    last = result.history[-1]
    steps = [row["step"] for row in result.history]
    assert len(steps) == 2 and 0 < result.timing["tracker_seconds"] < result.timing[
        "wall_seconds"]

    # TensorBoard: one log dir per trial, under <root>/tensorboard/<spec>/<trial id>
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(root / "tensorboard" / "tracked" / trial.trial_id))
    acc.Reload()
    val = acc.Scalars("val_f1_macro")
    assert [e.step for e in val] == steps
    assert val[-1].value == pytest.approx(last["val_f1_macro"])
    assert acc.Scalars("test/accuracy")[-1].value == pytest.approx(result.test["accuracy"])
    assert "config/text_summary" in acc.Tags()["tensors"]

    # MLflow: experiment = spec name, run name = trial id, params, metrics by step
    from mlflow.tracking import MlflowClient

    client = MlflowClient((root / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == trial.trial_id and run.info.status == "FINISHED"
    assert run.data.params["head_lr"] == "0.001" and run.data.params["model"] == "tiny-bert"
    assert run.data.params["environment.torch"] == result.environment["torch"]
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [
        (row["step"], pytest.approx(row["val_loss"])) for row in result.history]
    assert run.data.metrics["test/f1_macro"] == pytest.approx(result.test["f1_macro"])
    assert run.data.metrics["validation/accuracy"] == pytest.approx(
        result.validation["accuracy"])

    # W&B offline: the run folder holds the run, its group, config and history
    (run_file,) = (root / "wandb").glob("offline-run-*/run-*.wandb")
    records = _wandb_records(run_file)
    (meta,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (meta.display_name, meta.run_group) == (trial.trial_id, "tracked")
    config = {i.key: i.value_json for r in records if r.WhichOneof("record_type") == "config"
              for i in r.config.update}
    assert config["head_lr"] == '"0.001"'
    rows = [r.history for r in records if r.WhichOneof("record_type") == "history"]
    assert [h.step.num for h in rows] == steps
    logged = [{i.key or "/".join(i.nested_key): i.value_json for i in h.item} for h in rows]
    assert float(logged[-1]["val_loss"]) == pytest.approx(last["val_loss"])
    summary = {i.key or "/".join(i.nested_key): i.value_json for r in records
               if r.WhichOneof("record_type") == "summary" for i in r.summary.update}
    assert float(summary["test/accuracy"]) == pytest.approx(result.test["accuracy"])


def test_a_tracker_that_fails_never_fails_the_trial(tmp_path: Path, monkeypatch) -> None:
    """MLflow's server is gone: one warning, the trial passes and keeps its metrics."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    trial, spec = _trial(tmp_path, '["mlflow", "tensorboard"]')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_trial(trial, spec, tracking_root=tmp_path / "results")
    untracked = run_trial(dataclasses.replace(trial, config=trial.config.replace(report_to=())),
                          spec)  # the same trial without trackers: the same metrics
    assert (result.status, result.validation, result.test) == (
        "passed", untracked.validation, untracked.test) and result.test["accuracy"] > 0
    messages = [str(w.message) for w in caught if "report_to" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("report_to: mlflow failed (")
    assert messages[0].endswith("it logs nothing more for this run, whose result is stored "
                                "as usual")
    assert (tmp_path / "results" / "tensorboard" / "tracked").is_dir()  # the others go on


def test_flatten_keeps_params_within_mlflow_limits() -> None:
    flat = flatten({"a": {"b": 1, "c": [1, 2]}, "long": "x" * 1000, "none": None})
    assert flat == {"a.b": "1", "a.c": "[1, 2]", "long": "x" * (PARAM_LIMIT - 3) + "...",
                    "none": "None"}


def test_report_to_takes_a_list_or_names_and_changes_no_result() -> None:
    from bertft.config import Config, parse_overrides

    cfg = Config.from_dict(parse_overrides(["report_to=mlflow, tensorboard"]))
    assert cfg.process.report_to == ("mlflow", "tensorboard")
    assert Config.of(report_to=["wandb"]).process.report_to == ("wandb",)
    assert Config.from_dict(cfg.to_dict()) == cfg  # stored results read back the same
    assert cfg.hash() == Config().hash()  # adding a tracker reruns nothing
    assert Config().process.report_to == ()
