"""Integration tests: the real pre-trained minilm-l6 on small subsets of real data."""

import json

import pytest

from bertft.cli import main
from bertft.config import Config, DataConfig
from bertft.data import load_task
from bertft.predict import Predictor
from bertft.train import fit

pytestmark = pytest.mark.integration
# 10 to 40 optimizer steps: a run's accuracy moves by +-5 points with the order of its batches
# (bbc-news, 150 articles: 0.87 / 0.73 / 0.77 over seeds 0-2 in random order, 0.78 / 0.80 /
# 0.82 with length_buckets), so these runs pin the order their thresholds were set on.
FAST = dict(model="minilm-l6", progress=False, save_model=False, epochs=1, batch_size=16,
            head_lr=1e-3, base_lr=1e-4, sampling="random")


def test_sst2_subset_learns_sentiment(shared_data):
    # validation (carved from GLUE train: 6,735 sentences) only picks the epoch: 500 of them
    cfg = Config.of(**FAST, task="sst2", data_dir=str(shared_data), max_train_samples=400,
                 max_length=48, max_eval_samples=500)
    result = fit(cfg)
    assert result.data["test"] == 872  # GLUE dev serves as the test split
    assert result.test["accuracy"] > 0.70  # chance is 0.51


def test_bbc_news_topics_from_the_installed_package():
    cfg = Config.of(**FAST, task="bbc-news", max_train_samples=150, max_length=64)
    result = fit(cfg)
    assert result.validation["accuracy"] > 0.85  # 5 classes, chance 0.23
    assert len(result.validation["confusion_matrix"]) == 5


def test_conll2003_subset_finds_entities(shared_data):
    cfg = Config.of(**{**FAST, "epochs": 2}, task="conll2003", data_dir=str(shared_data),
                 max_train_samples=300, max_length=64, max_eval_samples=500,
                 max_test_samples=500)  # of 3,250 / 3,453 sentences: evaluation dominated
    result = fit(cfg)
    assert result.validation["f1"] > 0.3
    assert set(result.validation["per_type"]) == {"LOC", "MISC", "ORG", "PER"}


def test_cli_train_eval_predict_round_trip_on_wnut16(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--task", "wnut16", "--max-train-samples", "64",
                 "--max-length", "32", "--epochs", "1", "--set", "progress=false"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"f1", "precision", "recall"} <= set(metrics["test"])
    capsys.readouterr()
    assert main(["eval", str(out), "--split", "test"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["test"]
    assert evaluated["f1"] == pytest.approx(metrics["test"]["f1"])
    pred = Predictor.from_run(out, device="cpu").predict(["Going to New York with Justin"])
    assert set(pred[0]) == {"text", "entities"}


def test_split_sizes_of_the_offline_builtins():
    assert load_task(DataConfig(task="bbc-news")).sizes() == {"train": 1779, "validation": 223,
                                                           "test": 223}
    assert load_task(DataConfig(task="wnut16")).sizes() == {"train": 1914, "validation": 240,
                                                         "test": 240}
