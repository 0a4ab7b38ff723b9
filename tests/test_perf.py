"""FLOP and MFU arithmetic by hand, accelerator peaks, and the regression-gate checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertft.perf import (
    RatioFloorCheck, format_table, load_floors, mfu, parse_floors, peak_flops, training_flops,
)

ROOT = Path(__file__).resolve().parent.parent


def test_training_flops_by_hand():
    # N=1000, L=2, H=8, sequences of 3 and 5 tokens:
    # 6*1000*8 = 48,000 ; 12*2*8*(9+25) = 6,528
    assert training_flops(1000, 2, 8, 8, [3, 5]) == 48_000 + 6_528


def test_training_flops_minilm_sized_batch():
    # 21.3M non-embedding params, 6 layers, 384 hidden, 32 sequences of 128 tokens (4,096):
    # dense 6 * 21.3M * 4,096 = 523,468,800,000 ; attention 12 * 6 * 384 * 32 * 16,384
    # = 14,495,514,624 ; about 0.54 TFLOP per batch
    assert training_flops(21_300_000, 6, 384, 32 * 128, [128] * 32) == 537_964_314_624


def test_mfu_by_hand():
    assert mfu(989e12, 2.0, 989e12) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="seconds"):
        mfu(1.0, 0.0, 1.0)


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA L4", 121e12),
    ("NVIDIA A10G", 70e12), ("NVIDIA L40S", 362e12), ("Tesla T4", None),
    ("NVIDIA L40", 181e12), ("NVIDIA H100 NVL", 835e12), ("NVIDIA A10", 125e12),
    ("NVIDIA A100 80GB PCIe", 312e12),
])
def test_peak_flops_by_device_name(name, peak):
    assert peak_flops(name) == peak


def test_floor_check_passes_within_tolerance_and_names_everything_when_failing():
    c = RatioFloorCheck("train_vs_trainer_dynamic", floor=2.0, tolerance=0.15)
    assert c.limit == pytest.approx(1.7)
    assert c.check(2.5) is None and c.check(1.7) is None
    msg = c.check(1.5)
    assert msg is not None
    for part in ("train_vs_trainer_dynamic", "1.500", "2.000", "15%"):
        assert part in msg


def test_parse_floors_collects_every_problem():
    checks = parse_floors("tolerance = 0.1\n[floors]\na = 2\nb = 0.5\n")
    assert [(c.name, c.floor, c.tolerance) for c in checks] == [("a", 2.0, 0.1), ("b", 0.5, 0.1)]
    with pytest.raises(ValueError) as e:
        parse_floors("tolerance = 2\nfloor = 1\n[floors]\na = -1\nb = true\n")
    text = str(e.value)
    for part in ("tolerance = 2", "unknown key 'floor'", "floors.a = -1", "floors.b = True"):
        assert part in text


@pytest.mark.parametrize("content, problem", [
    (None, "file not found"),
    ("[floors\n", "TOML syntax error: Expected ']' at the end of a table declaration"),
    ("floors = 3\n", "floors = 3: expected a table of name = number"),
    ("[floors]\na = 'x'\n", "floors.a = 'x': expected a number > 0"),
])
def test_a_bad_floors_file_is_one_message_and_exit_2(tmp_path, capsys, content, problem):
    from benchmarks.check import main

    path = tmp_path / "my-floors.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as e:
        load_floors(path)
    assert str(e.value).startswith(f"{path}: {problem}")  # syntax errors add the position
    assert main(["--floors", str(path)]) == 2  # before any data is loaded or compute run
    err = capsys.readouterr().err
    assert err == f"benchmarks.check: --floors {e.value}\n" and err.count("\n") == 1


SINGLE_AND_GRID = {"train_vs_trainer_dynamic", "train_vs_trainer_max_length",
                   "grid_speedup_vs_trainer"}


@pytest.mark.parametrize("name, expected", [
    ("floors.toml", SINGLE_AND_GRID | {"defaults_vs_trainer_dynamic", "process_vs_trainer",
                                       "short_questions_vs_trainer_dynamic",
                                       "process_short_questions_vs_trainer"}),
    ("floors-gpu.toml", SINGLE_AND_GRID),
])
def test_shipped_floors_files_are_valid(name, expected):
    names = {c.name for c in load_floors(ROOT / "benchmarks" / name)}
    assert names == expected


def test_format_table_marks_failures():
    c = RatioFloorCheck("x", 1.0)
    table = format_table([(c, 1.2, None), (c, 0.5, c.check(0.5))])
    assert "| x | 1.200 | 1.000 | >= 0.850 | ok |" in table
    assert "| x | 0.500 | 1.000 | >= 0.850 | FAIL |" in table


def test_benchmark_data_check_looks_for_the_task_it_reads(tmp_path, monkeypatch, capsys):
    from benchmarks import gpu
    from benchmarks.workload import data_dir

    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "imdb_train_sample.csv").write_text("text,label\n")
    monkeypatch.setenv("BERTFT_DATA_DIR", str(tmp_path))
    assert (data_dir("imdb"), data_dir("sst2"), data_dir()) == (tmp_path, None, None)
    monkeypatch.setenv("BERTFT_DATA_DIR", str(tmp_path / "none"))
    assert gpu.main(["--random-init"]) == 2
    assert capsys.readouterr().err == ("benchmarks.gpu: needs imdb/imdb_train_sample.csv under "
                                       "BERTFT_DATA_DIR (default ../shared/data)\n")


def test_short_questions_keep_texts_of_6_to_14_words():
    from benchmarks.check import GATE, GATE_QUESTIONS
    from benchmarks.workload import SHORT_QUESTIONS, keep_words
    from bertft.data import Example, Splits

    rows = tuple(Example(text=" ".join(["w"] * n), label=n % 2) for n in (3, 6, 20, 14, 9, 15))
    splits = Splits("toy", "classification", ("a", "b"), rows, rows[:1], rows[:1], "test")
    kept = keep_words(splits, SHORT_QUESTIONS.words, 3)
    assert [len(e.text.split()) for e in kept.train] == [6, 14, 9]
    assert keep_words(splits, None, 3) is splits
    with pytest.raises(SystemExit, match="only 3 training texts of 6-14 words; asked for 4"):
        keep_words(splits, (6, 14), 4)
    assert (SHORT_QUESTIONS.train_rows, SHORT_QUESTIONS.words) == (5452, (6, 14))  # TREC-6
    assert (GATE_QUESTIONS.train_rows, GATE_QUESTIONS.words) == (GATE.train_rows, (6, 14))


def test_candidate_defaults_are_validated_before_anything_runs(capsys):
    from benchmarks import defaults

    assert defaults.candidates(["unpad_min_padding=0.15", "unpad=false,sampling=random"]) == {
        "bertft-unpad_min_padding=0.15": {"unpad_min_padding": 0.15},
        "bertft-unpad=false,sampling=random": {"unpad": False, "sampling": "random"}}
    with pytest.raises(SystemExit):
        defaults.main(["--also", "unpad_min_pading=0.2"])
    assert "--also: 1 problem:\n  - unknown setting 'unpad_min_pading' (did you mean " in \
        capsys.readouterr().err


def test_gate_measures_and_gates_the_whole_process_on_short_questions(tmp_path, monkeypatch,
                                                                       capsys):
    """`benchmarks.check` runs `benchmarks.process --workload short-questions` at its process
    size and gates `process_short_questions_vs_trainer` against the shipped floor (1.11, limit
    0.94): 1.0 passes, 0.9 fails. Every measurement is replaced by a stub here."""
    import json

    from benchmarks import check, process

    class FakeSetup:
        @classmethod
        def load(cls, workload):
            return cls()

        def facts(self):
            return {"device": "cpu", "device_type": "cpu", "dtype": "float32", "threads": 1}

    calls, short = [], [1.0]

    def fake_process(data, rows, val_rows, rounds, test_rows=None, workload="sst2"):
        calls.append((workload, rows, val_rows, test_rows, rounds))
        return {"process_vs_trainer": short[0] if workload == "short-questions" else 1.2}

    monkeypatch.setenv("BERTFT_CACHE_DIR", "")
    monkeypatch.setattr(check, "data_dir", lambda: tmp_path)
    monkeypatch.setattr(check, "Setup", FakeSetup)
    monkeypatch.setattr(check, "warmup", lambda setup: None)
    monkeypatch.setattr(check, "run_bertft", lambda setup, **o: {"samples_per_s": 200.0})
    monkeypatch.setattr(check, "run_trainer", lambda setup, padding: {
        "samples_per_s": 80.0 if padding == "dynamic" else 50.0})
    monkeypatch.setattr(check, "run_grid_bertft", lambda setup, **o: {"wall_seconds": 1.0})
    monkeypatch.setattr(check, "run_grid_trainer", lambda setup: {"wall_seconds": 2.0})
    monkeypatch.setattr(process, "measure", fake_process)
    assert check.main(["--out", str(tmp_path / "check.json")]) == 0
    assert calls == [("sst2", 256, 64, 256, 2), ("short-questions", 256, 64, 256, 2)]
    out = capsys.readouterr().out
    assert "| process_short_questions_vs_trainer | 1.000 | 1.110 | >= 0.94" in out
    assert "not gated" not in out
    stored = json.loads((tmp_path / "check.json").read_text())
    assert stored["ratios"]["process_short_questions_vs_trainer"] == 1.0
    assert "process_short_questions_vs_trainer" in {c["name"] for c in stored["checks"]}
    assert stored["raw"]["process-questions"] == {"process_vs_trainer": 1.0}
    short[0] = 0.9
    assert check.main(["--out", str(tmp_path / "check.json")]) == 1
    assert "FAIL: process_short_questions_vs_trainer" in capsys.readouterr().err
