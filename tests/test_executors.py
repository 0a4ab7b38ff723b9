"""The executor interface: a session makes its executor on first use and cancels it once; the
registry and each executor's own options drive the plugin's command line; gpus pins a worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bertft.ablation.executors import Executor, GpusExecutor, LocalExecutor, Option, Session
from bertft.ablation.plugin import EXECUTORS

pytest_plugins = ["pytester"]


class Recording(Executor):
    name, summary = "recording", "records calls"
    options = (Option("level", "a setting of this executor only", int, 3, metavar="N"),)
    made: list[Recording] = []

    def __init__(self, results, cache, settings) -> None:
        super().__init__(results, cache, settings)
        self.calls: list[str] = []
        self.made.append(self)

    @classmethod
    def option_problems(cls, settings):
        return [] if settings["level"] >= 0 else [f"level = {settings['level']}: must be >= 0"]

    def result(self, trial, spec, measure=None):
        raise AssertionError("not run here")

    def cancel(self) -> None:
        self.calls.append("cancel")


def test_a_session_makes_its_executor_on_first_use_and_cancels_it_once(tmp_path: Path):
    Recording.made.clear()
    session = Session(Recording, {"level": 2}, tmp_path)
    session.close()  # nothing made yet: nothing to cancel
    assert Recording.made == []
    executor = session.executor
    assert session.executor is executor and executor.cache is session.cache
    assert (executor.results, executor.settings) == (tmp_path, {"level": 2})
    session.close()
    session.close()
    assert executor.calls == ["cancel"]


def test_the_registry_names_each_executor_once():
    assert {n: c.name for n, c in EXECUTORS.items()} == {"local": "local", "gpus": "gpus",
                                                         "ray": "ray"}
    assert issubclass(GpusExecutor, LocalExecutor) and not LocalExecutor.submits_ahead
    assert [o.name for o in EXECUTORS["ray"].options] == [
        "address", "num_gpus", "num_cpus", "max_retries"]


def test_a_registered_executor_brings_its_options(pytester, monkeypatch):
    monkeypatch.setitem(EXECUTORS, "recording", Recording)
    config = pytester.parseconfig("--bertft-executor", "recording",
                                  "--bertft-recording-level", "5")
    assert config.getoption("--bertft-recording-level") == 5  # typed by its Option
    assert pytester.parseconfig().getoption("--bertft-recording-level") == 3  # its default
    bad = pytester.runpytest_inprocess("--bertft-recording-level", "-1", "-p",
                                       "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--bertft-recording-level = -1: must be >= 0*"])


def test_the_gpus_executor_pins_each_xdist_worker_to_one_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    GpusExecutor.prepare(None)  # not a worker: every GPU stays visible
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3,5"
    GpusExecutor.prepare("gw3")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    LocalExecutor.prepare("gw0")  # the local executor leaves the GPUs alone
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
