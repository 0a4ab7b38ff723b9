"""Interruption, corruption and concurrency: a killed, interrupted or doubled grid run loses no
result, never reads a partial one as complete, and never runs (or writes) a trial twice.

Grids run for real in subprocesses (`python -m pytest SPEC --bertft-results DIR`) on the tiny
model: 4 trials of ~1-2 s each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bertft.results import SCHEMA_VERSION
from bertft.ablation.spec import SpecError, expand, load_spec
from bertft.ablation.store import Lookup, ResultStore

pytest_plugins = ["pytester"]

SPEC = """
name = "faults"
seeds = [0, 1]
[base]
model = "tiny-bert"
task = "bbc-news"
max_train_samples = 200
max_length = 32
epochs = 2
batch_size = 8
progress = false
save_model = false
num_threads = 1
[grid]
head_lr = [1e-3, 1e-2]
"""
TRIALS = ("head_lr=0.001,seed=0", "head_lr=0.001,seed=1", "head_lr=0.01,seed=0",
          "head_lr=0.01,seed=1")
TIMING = {"train_seconds", "samples_per_s", "tokens_per_s"}  # may differ between runs


# -- helpers -----------------------------------------------------------------------------------
class Grid:
    """A spec file in its own folder, run by pytest in subprocesses; HOME and TMPDIR point into
    the folder so that stray writes are caught."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.spec = root / "faults.toml"
        self.spec.write_text(SPEC, encoding="utf-8")
        for name in ("home", "tmp", "cache"):
            (root / name).mkdir(exist_ok=True)
        # a plain pytest run, as a user's, also when these tests run on xdist workers (their
        # PYTEST_XDIST_* variables make pytest-benchmark warn into the output read here)
        outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
        self.env = {**outer, "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"),
                    "BERTFT_CACHE_DIR": str(root / "cache"), "HF_HUB_OFFLINE": "1",
                    "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}

    def results(self, name: str = "results") -> Path:
        return self.root / name

    def start(self, results: str = "results", *args: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "pytest", str(self.spec), "--bertft-results",
                str(self.results(results)), "-p", "no:cacheprovider", "-rs", *args]
        # SIGINT as a terminal delivers it: a pytest-xdist worker ignores SIGINT, and an
        # ignored signal stays ignored in its children (Python then installs no handler)
        return subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_default_sigint)

    def run(self, results: str = "results", *args: str) -> tuple[int, str]:
        proc = self.start(results, *args)
        out, _ = proc.communicate(timeout=300)
        return proc.returncode, out


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stored(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((folder / "faults").glob("*.json"))}


def comparable(record: dict) -> dict:
    """What must be identical between two runs of a trial (timings may differ)."""
    history = [{k: v for k, v in row.items() if k not in TIMING} for row in record["history"]]
    return {"status": record["status"], "validation": record["validation"],
            "test": record["test"], "history": history, "best": record["best"],
            "config_hash": record["config_hash"]}


def wait_for_results(folder: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(list((folder / "faults").glob("*.json"))) < n:
        assert proc.poll() is None, f"the run ended early:\n{proc.communicate()[0]}"
        assert time.monotonic() < deadline, "no result appeared"
        time.sleep(0.05)


def outcome(out: str) -> dict[str, int]:
    last = out.strip().splitlines()[-1]
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", last)}


def leftovers(folder: Path) -> list[str]:
    """Files of the store that are neither results nor the files it may leave behind."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                  and not p.name.endswith((".json", ".tmp", ".lock")))


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Grid:
    return Grid(tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def clean(grid: Grid) -> dict[str, dict]:
    """One uninterrupted run: the reference for every other test."""
    rc, out = grid.run("clean")
    assert rc == 0, out
    assert outcome(out) == {"passed": 4}
    records = stored(grid.results("clean"))
    assert sorted(records) == sorted(TRIALS)
    assert all(r["status"] == "passed" for r in records.values())
    return records


# -- safety -----------------------------------------------------------------------------------
def test_a_run_writes_only_under_the_results_and_cache_dirs(grid: Grid, clean) -> None:
    # pytest-benchmark creates its (empty) default storage folder ./.benchmarks at start-up;
    # nothing is saved into it unless --benchmark-autosave is given.
    benchmarks = grid.root / ".benchmarks"
    assert not benchmarks.exists() or list(benchmarks.rglob("*")) == []
    assert sorted(p.name for p in grid.root.iterdir() if p != benchmarks) == [
        "cache", "clean", "faults.toml", "home", "tmp"]
    assert list((grid.root / "home").rglob("*")) == []
    assert list((grid.root / "tmp").rglob("*")) == []
    assert leftovers(grid.results("clean")) == []


# -- SIGKILL and rerun ---------------------------------------------------------------------------
def test_killed_run_resumes_and_matches_a_clean_run(grid: Grid, clean) -> None:
    folder = grid.results("killed")
    proc = grid.start("killed")
    wait_for_results(folder, 1, proc)
    time.sleep(0.3)  # now inside the second trial
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    before = stored(folder)
    assert 1 <= len(before) < len(TRIALS), "the kill came too late to test anything"
    for record in before.values():  # what is there is complete, never partial
        assert record["status"] == "passed" and record["schema_version"] == SCHEMA_VERSION

    rc, out = grid.run("killed")
    assert rc == 0, out
    assert outcome(out) == {"passed": len(TRIALS) - len(before), "skipped": len(before)}
    after = stored(folder)
    assert sorted(after) == sorted(TRIALS)  # each trial exactly once
    assert {k: comparable(v) for k, v in after.items()} == \
        {k: comparable(v) for k, v in clean.items()}
    assert {k: after[k]["created"] for k in before} == {k: v["created"] for k, v in
                                                        before.items()}  # not rewritten
    assert not list(folder.rglob("*.corrupt"))
    assert leftovers(folder) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_partial_result(sig, grid: Grid) -> None:
    folder = grid.results(f"interrupted-{sig.name}")
    # longer trials than the other tests': the tiny model finishes a 2-epoch trial in a few
    # tenths of a second, so the signal could otherwise land after the last one
    proc = grid.start(folder.name, "--bertft-set", "epochs=12")
    wait_for_results(folder, 1, proc)
    time.sleep(0.1)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, out
    store = ResultStore(folder)
    spec = load_spec(grid.spec, {"epochs": 12})
    states = {t.trial_id: store.lookup(spec.name, t.trial_id, t.config.hash()).state
              for t in expand(spec)}
    assert set(states.values()) <= {"complete", "missing"}, states
    assert 1 <= list(states.values()).count("complete") < len(TRIALS), out
    assert leftovers(folder) == []


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_grid(grid: Grid) -> None:
    """Python drops a KeyboardInterrupt raised inside `__del__`; the plugin remembers the
    SIGINT and stops after the trial in progress, whose result is complete."""
    (grid.root / "conftest.py").write_text(
        "import os, signal\n"
        "class Bomb:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)  # its KeyboardInterrupt is swallowed\n"
        "def pytest_runtest_call(item):\n"
        "    Bomb()\n", encoding="utf-8")
    try:
        rc, out = grid.run("swallowed")
    finally:
        (grid.root / "conftest.py").unlink()
    assert rc == pytest.ExitCode.INTERRUPTED, out
    assert "interrupted (SIGINT) after" in out, out
    records = stored(grid.results("swallowed"))
    assert len(records) == 1 and next(iter(records.values()))["status"] == "passed"


# -- partial, stale and foreign files in the store ------------------------------------------------
def test_store_never_reads_a_partial_file_as_complete(tmp_path: Path, clean) -> None:
    store = ResultStore(tmp_path)
    record = clean[TRIALS[0]]
    path = store.path("faults", TRIALS[0])
    path.parent.mkdir(parents=True)
    text = json.dumps(record, indent=2)
    for cut in (0, 1, len(text) // 2, len(text) - 2):
        path.write_text(text[:cut])
        found = store.lookup("faults", TRIALS[0], record["config_hash"])
        assert found.state == "corrupt" and found.result is None
        assert str(path) in found.reason and "unreadable result" in found.reason
    path.unlink()
    (path.parent / f".{path.name}.abc123.tmp").write_text(text[:100])  # a write cut short
    assert store.lookup("faults", TRIALS[0], record["config_hash"]).state == "missing"
    path.write_text(text)
    assert store.lookup("faults", TRIALS[0], record["config_hash"]).state == "complete"
    assert store.lookup("faults", TRIALS[0], "0" * 16).state == "stale"
    path.write_text(json.dumps({**record, "schema_version": 0}))
    assert store.lookup("faults", TRIALS[0], record["config_hash"]).state == "corrupt"
    for text, kind in (("[]", "list"), ('"done"', "str"), ("null", "NoneType")):
        path.write_text(text)  # valid JSON, but not a record
        assert store.lookup("faults", TRIALS[0], record["config_hash"]) == Lookup(
            "corrupt", reason=f"{path}: unreadable result (expected a JSON object, got {kind})")


def test_rerun_repairs_partial_stale_and_old_results(grid: Grid, clean) -> None:
    """Truncated -> quarantined and rerun; older schema -> rerun; other config hash -> moved to
    superseded/ and rerun; an intact result is reused and a leftover .tmp file is ignored."""
    folder = grid.results("tampered")
    (folder / "faults").mkdir(parents=True)
    store = ResultStore(folder)
    truncated, old, other_hash, intact = TRIALS
    text = {k: json.dumps(v, indent=2) for k, v in clean.items()}
    store.path("faults", truncated).write_text(text[truncated][: len(text[truncated]) // 2])
    store.path("faults", old).write_text(json.dumps({**clean[old], "schema_version": 0}))
    replaced = json.dumps({**clean[other_hash], "config_hash": "0123456789abcdef",
                           "test": {"accuracy": -1.0}})
    store.path("faults", other_hash).write_text(replaced)
    store.path("faults", intact).write_text(text[intact])
    tmp_file = folder / "faults" / f".{intact}.json.x1y2.tmp"
    tmp_file.write_text("{ half a result")

    rc, out = grid.run("tampered")
    assert rc == 0, out
    assert outcome(out) == {"passed": 3, "skipped": 1}
    assert "unreadable result" in out and ".corrupt" in out  # the quarantine is reported
    after = stored(folder)
    assert sorted(after) == sorted(TRIALS)
    assert {k: comparable(v) for k, v in after.items()} == \
        {k: comparable(v) for k, v in clean.items()}
    kept = sorted(p.name for p in (folder / "faults").glob("*.corrupt"))
    assert kept == [f"{truncated}.json.corrupt", f"{old}.json.corrupt"]  # never deleted
    superseded = folder / "faults" / "superseded"
    assert [p.name for p in superseded.iterdir()] == [f"{other_hash}.01234567.json"]
    assert (superseded / f"{other_hash}.01234567.json").read_text() == replaced
    assert tmp_file.read_text() == "{ half a result"


# -- two runs at once ------------------------------------------------------------------------------
def test_two_concurrent_runs_write_each_trial_once(grid: Grid, clean) -> None:
    first, second = grid.start("shared"), grid.start("shared")
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    counts = [outcome(out) for out in outs]
    passed = sum(c.get("passed", 0) for c in counts)
    reused = sum(out.count("stored result reused") for out in outs)
    assert passed == len(TRIALS), counts  # each trial trained (and written) by one run
    assert passed + reused == 2 * len(TRIALS), counts  # the other run reused its result
    after = stored(grid.results("shared"))
    assert sorted(after) == sorted(TRIALS)
    assert {k: comparable(v) for k, v in after.items()} == \
        {k: comparable(v) for k, v in clean.items()}
    assert leftovers(grid.results("shared")) == []


# -- safety: parsing and loading -------------------------------------------------------------------
def test_specs_are_parsed_with_tomllib_only(tmp_path: Path, monkeypatch) -> None:
    """A spec is read by tomllib.loads, once, and its strings stay data: code in them is never
    run, and YAML or pickle syntax is a TOML syntax error."""
    import tomllib

    import bertft.ablation.spec as spec_module

    calls: list[str] = []
    real = tomllib.loads
    monkeypatch.setattr(spec_module.tomllib, "loads", lambda text: calls.append(text) or real(text))
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = tmp_path / "s.toml"
    path.write_text(f'description = "{code}"\n[base]\ntext_column = "{code}"\n'
                    '[grid]\nhead_lr = [1e-3]\n', encoding="utf-8")
    spec = load_spec(path)
    assert calls == [path.read_text(encoding="utf-8")]
    assert spec.description == code and expand(spec)[0].config.data.text_column == code
    assert not marker.exists()
    for text in ("!!python/object/apply:os.system ['true']\n",
                 "cos\nsystem\n(S'true'\ntR.\n"):  # a YAML tag, a pickle
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SpecError, match="TOML syntax error"):
            load_spec(path)


def test_models_load_safetensors_and_no_remote_code_unless_asked(monkeypatch,
                                                                 tmp_path: Path) -> None:
    """`use_safetensors=True` always; `trust_remote_code` is False unless the spec sets it."""
    import bertft.models as models
    from bertft.config import Config
    from bertft.kinds import kind_of

    calls: list[tuple[str, dict]] = []

    class Stop(Exception):
        pass

    def recorder(what):
        def from_pretrained(path, *args, **kwargs):
            calls.append((what, kwargs))
            raise Stop
        return from_pretrained
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", recorder("tokenizer"))
    monkeypatch.setattr(kind_of("classification").auto_model(), "from_pretrained",
                        recorder("model"))
    monkeypatch.setattr(models, "model_config", lambda *a: None)
    assert Config.of().model.trust_remote_code is False
    for trust in (False, True):
        spec_file = tmp_path / f"s{trust}.toml"
        spec_file.write_text(f'[base]\nmodel = "minilm-l6"\ntrust_remote_code = '
                             f'{str(trust).lower()}\n[grid]\nhead_lr = [1e-3]\n')
        cfg = expand(load_spec(spec_file))[0].config
        assert cfg.model.trust_remote_code is trust
        calls.clear()
        with pytest.raises(Stop):
            models.load_tokenizer(cfg.model)
        with pytest.raises(Stop):
            models.build_model(cfg.model, "classification", ("a", "b"))
        (_, tok), (_, model) = calls
        assert tok["trust_remote_code"] is trust and model["trust_remote_code"] is trust
        assert model["use_safetensors"] is True
