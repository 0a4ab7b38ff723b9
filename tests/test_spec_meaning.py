"""Specs mean what they say (issue 22): every case is refused when the spec is collected, with
one message naming the spec, the key and what is allowed, before any trial trains."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from bertft.ablation.meaning import RESERVED_NAMES
from bertft.ablation.spec import SpecError, expand, load_spec, parse_spec
from bertft.cli import main

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SPEC = """
name = "s"
seeds = [0, 1]
baseline = { head_lr = 1e-3 }
[base]
model = "tiny-bert"
task = "bbc-news"
[grid]
head_lr = [1e-3, 1e-2]
"""


def _problems(text: str, tmp_path: Path, overrides: dict | None = None) -> list[str]:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path, overrides)
    assert str(exc.value).startswith(f"{path}: ")  # names the spec
    return exc.value.problems


# -- --set on an axis ---------------------------------------------------------------------------
def test_a_command_line_setting_on_a_grid_axis_is_refused(tmp_path: Path) -> None:
    assert _problems(SPEC, tmp_path, {"head_lr": 0.5}) == [
        "head_lr = 0.5 given on the command line (--set / --bertft-set) is the axis grid.head_lr "
        "of this spec; a command-line setting cannot change an axis: edit the spec's axis, or "
        "select arms with -k"]


def test_a_command_line_setting_on_a_zip_axis_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("head_lr = 1e-3 }", "head_lr = 1e-3, epochs = 1 }") \
        + "[[zip]]\nbase_lr = [1e-4, 1e-5]\nepochs = [1, 2]\n"
    assert _problems(text, tmp_path, {"epochs": 2, "lowercase": True}) == [
        "epochs = 2 given on the command line (--set / --bertft-set) is the axis zip[0] of this "
        "spec; a command-line setting cannot change an axis: edit the spec's axis, or select "
        "arms with -k"]


def test_a_command_line_setting_off_the_axes_still_sets_every_trial(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SPEC, encoding="utf-8")
    assert {t.config.loop.epochs for t in expand(load_spec(path, {"epochs": 2}))} == {2}


def test_bertft_ablate_set_on_an_axis_exits_2_naming_axis_and_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bertft.ablation.runner as runner

    def no_training(*args, **kwargs):
        raise AssertionError("a trial ran")
    monkeypatch.setattr(runner, "fit", no_training)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC, encoding="utf-8")
    code = main(["ablate", str(spec), "--set", "head_lr=0.5", "--results",
                 str(tmp_path / "results"), "--no-report", "-p", "no:cacheprovider", "-q"])
    out = capsys.readouterr().out
    assert code == 2
    assert f"{spec}: 1 problem:" in out
    assert "head_lr = 0.5 given on the command line (--set / --bertft-set) is the axis " \
           "grid.head_lr of this spec" in out
    assert not (tmp_path / "results").exists()


# -- the baseline picks exactly one arm ---------------------------------------------------------
def test_a_baseline_that_fixes_some_axes_and_matches_several_arms_is_refused(tmp_path) -> None:
    text = SPEC.replace("baseline = { head_lr = 1e-3 }", "baseline = { freeze_layers = 0 }") \
        + "freeze_layers = [0, 1]\n"
    assert _problems(text, tmp_path) == [
        "baseline = { freeze_layers = 0 } matches 2 arms (head_lr=0.001,freeze_layers=0; "
        "head_lr=0.01,freeze_layers=0); the baseline must pick one arm: add head_lr to it"]


def test_a_baseline_may_leave_out_an_axis_with_one_value() -> None:
    spec = parse_spec({"name": "s", "seeds": [0], "baseline": {"freeze_layers": 0},
                       "base": {"model": "tiny-bert"},
                       "grid": {"freeze_layers": [0, 1], "head_lr": [1e-3]}}, "s.toml", {})
    assert spec.baseline == {"freeze_layers": 0}


def test_a_baseline_value_of_another_type_than_its_axis_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("baseline = { head_lr = 1e-3 }", "baseline = { freeze_embeddings = 0 }") \
        .replace("head_lr = [1e-3, 1e-2]", "freeze_embeddings = [false, true]")
    assert _problems(text, tmp_path) == [
        "baseline.freeze_embeddings = 0: not among the axis values [false, true] (0 is an "
        "integer; the axis holds true/false)"]


def test_a_baseline_naming_one_key_of_a_zip_picks_its_column(tmp_path: Path) -> None:
    text = SPEC.replace("baseline = { head_lr = 1e-3 }", "baseline = { base_lr = 1e-4 }") \
        .replace("head_lr = [1e-3, 1e-2]", "") + "[[zip]]\nbase_lr = [1e-4, 1e-5]\n" \
        "epochs = [1, 2]\n"
    path = tmp_path / "z.toml"
    path.write_text(text, encoding="utf-8")
    assert load_spec(path).baseline == {"base_lr": 1e-4}


# -- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, problem", [
    ("README", "name = 'README': reserved for the reports folder's index (README.md); choose "
               "another name"),
    ("readme", "name = 'readme': reserved for the reports folder's index (README.md); choose "
               "another name"),
    ("mlruns", "name = 'mlruns': reserved for the trackers' folder in the results folder (the "
               "local MLflow store); choose another name"),
    ("café", "name = 'café': expected a non-empty name of ASCII letters, digits, - and _, "
             "starting with a letter or a digit"),
    ("-k", "name = '-k': expected a non-empty name of ASCII letters, digits, - and _, starting "
           "with a letter or a digit"),
])
def test_reserved_and_unsafe_spec_names_are_refused(name: str, problem: str, tmp_path) -> None:
    assert _problems(SPEC.replace('name = "s"', f'name = "{name}"'), tmp_path) == [problem]


def test_the_reserved_names_are_those_the_report_and_the_trackers_write() -> None:
    """Each name the index or a tracker writes beside the spec folders / reports is reserved."""
    render = (ROOT / "bertft" / "report" / "render.py").read_text(encoding="utf-8")
    trackers = (ROOT / "bertft" / "trackers.py").read_text(encoding="utf-8")
    written = set(re.findall(r'out_dir / "([^"]+)\.md"', render))
    written |= set(re.findall(r'root / "([a-z]+)"', trackers))
    assert written == {"README", "tensorboard", "mlruns", "wandb"}
    assert {w.lower() for w in written} == set(RESERVED_NAMES)


# -- settings outside the result key -----------------------------------------------------------
@pytest.mark.parametrize("axis, values", [("num_threads", "[1, 2]"),
                                          ("report_to", '[[], ["tensorboard"]]')])
def test_an_axis_over_a_setting_that_does_not_change_the_result_is_refused(
        axis: str, values: str, tmp_path: Path) -> None:
    text = SPEC.replace("baseline = { head_lr = 1e-3 }", "") + f"{axis} = {values}\n"
    assert _problems(text, tmp_path) == [
        f"grid.{axis}: {axis} does not change a trial's result (it is in the [process] "
        "settings, outside the key that identifies a result), so arms that differ only in it "
        "would be copies of one stored result, its speed included; set it in [base] or "
        "with --set"]


def test_a_setting_outside_the_key_in_base_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SPEC.replace('task = "bbc-news"', 'task = "bbc-news"\nnum_threads = 1'),
                    encoding="utf-8")
    assert {t.config.process.num_threads for t in expand(load_spec(path))} == {1}


# -- data files of every grid point -------------------------------------------------------------
def test_data_files_of_every_grid_point_are_checked_at_collection(tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("ok.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    Path("notes.txt").write_text("x", encoding="utf-8")
    Path("folder.csv").mkdir()
    text = SPEC.replace('task = "bbc-news"', 'task = "text-file"') \
        .replace("head_lr = [1e-3, 1e-2]",
                 'train_file = ["ok.csv", "gone.csv", "notes.txt", "folder.csv"]') \
        .replace("baseline = { head_lr = 1e-3 }", 'baseline = { train_file = "ok.csv" }')
    assert _problems(text, tmp_path) == [
        "train_file = 'gone.csv': file not found (arm train_file=gone.csv)",
        "train_file: notes.txt: cannot tell the file format from the extension '.txt'; use "
        ".csv, .tsv or .jsonl, or set file_format to csv, tsv or jsonl (arm train_file=notes.txt)",
        "train_file = 'folder.csv': is a folder, not a file (arm train_file=folder.csv)"]


def test_a_missing_base_data_file_is_named_once_for_every_arm(tmp_path: Path) -> None:
    text = SPEC.replace('task = "bbc-news"', 'task = "conll-file"\ntest_file = "no/such.conll"'
                        '\ntrain_file = "no/train.conll"')
    assert _problems(text, tmp_path) == [
        "train_file = 'no/train.conll': file not found (arms head_lr=0.001; head_lr=0.01)",
        "test_file = 'no/such.conll': file not found (arms head_lr=0.001; head_lr=0.01)"]


def test_a_local_dataset_folder_that_is_not_there_is_refused_and_a_hub_id_is_not_asked(
        tmp_path: Path) -> None:
    text = SPEC.replace('task = "bbc-news"', 'task = "hf-dataset"') \
        .replace("head_lr = [1e-3, 1e-2]", 'dataset = ["./absent", "someone/some-data"]') \
        .replace("baseline = { head_lr = 1e-3 }", 'baseline = { dataset = "./absent" }')
    assert _problems(text, tmp_path) == [
        "dataset = './absent': no such folder; expected a folder of csv/json/parquet files or "
        "one written by save_to_disk (arm dataset=./absent)"]


def test_two_specs_whose_names_differ_only_in_case_are_a_collection_error(
        pytester: pytest.Pytester) -> None:
    """results/Smoke and results/smoke are one folder where the file system ignores case."""
    for stem, name in (("a", "smoke"), ("b", "Smoke")):
        pytester.makefile(".toml", **{stem: SPEC.replace('name = "s"', f'name = "{name}"')})
    result = pytester.runpytest_inprocess(str(pytester.path / "a.toml"),
                                          str(pytester.path / "b.toml"), "--collect-only",
                                          "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert f"name = 'Smoke': also the name of {pytester.path / 'a.toml'}; results are stored " \
           "by spec name, so each collected spec needs its own (names are compared ignoring " \
           "case, as some file systems do)" in " ".join(result.stdout.str().split())


def test_a_data_dir_that_is_not_a_folder_is_refused_for_the_tasks_that_read_one(
        tmp_path: Path) -> None:
    text = SPEC.replace('task = "bbc-news"', f'task = "sst2"\ndata_dir = "{tmp_path}/nowhere"')
    assert _problems(text, tmp_path) == [
        f"data_dir = '{tmp_path}/nowhere': no such folder; expected a local copy of sst2 in its "
        "original layout (arms head_lr=0.001; head_lr=0.01)"]
    bbc = SPEC.replace('task = "bbc-news"', f'task = "bbc-news"\ndata_dir = "{tmp_path}/x"')
    (tmp_path / "bbc.toml").write_text(bbc, encoding="utf-8")
    assert load_spec(tmp_path / "bbc.toml").base["data_dir"]  # bbc-news reads no data_dir
