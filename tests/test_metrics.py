"""Tests for the local evaluate metrics in ftkit/metrics; every expected value is worked out by hand."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftkit.platform.errors import FtkitError  # noqa: E402
from ftkit import metrics  # noqa: E402

# Binary example: refs 1,1,1,1,0,0 vs preds 1,1,0,0,1,0.
# Class 1: TP=2 FP=1 FN=2 -> P=2/3 R=1/2 F1=4/7.  Class 0: TP=1 FP=2 FN=1 -> P=1/3 R=1/2 F1=2/5.
BIN_REFS, BIN_PREDS = [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0]
# 3-class example: refs 0,0,1,1,2,2 vs preds 0,1,1,1,2,0 (4 of 6 right).
# Class 0: TP=1 FP=1 FN=1 -> P=1/2 R=1/2 F1=1/2.  Class 1: TP=2 FP=1 FN=0 -> P=2/3 R=1 F1=4/5.
# Class 2: TP=1 FP=0 FN=1 -> P=1 R=1/2 F1=2/3.  Macro F1 = (1/2 + 4/5 + 2/3) / 3 = 59/90.
MC_REFS, MC_PREDS = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]


def test_available_lists_every_metric_folder():
    assert metrics.AVAILABLE == ("accuracy", "exact_match", "f1", "perplexity", "precision", "recall", "rouge")


def test_load_is_cached():
    assert metrics.load("f1") is metrics.load("f1")


def test_unknown_metric_is_a_one_line_ftkit_error():
    with pytest.raises(FtkitError) as info:
        metrics.load("bleu")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and "'bleu'" in message
    assert all(name in message for name in metrics.AVAILABLE)


def test_rouge():
    rouge = metrics.load("rouge")
    # "The cat sat." vs "the cat sat on the mat": 3 of 3 predicted words match, 3 of 6 reference words:
    # P=1, R=1/2, F1=2/3 for unigrams and for the longest common subsequence alike.
    assert rouge.compute(predictions=["The cat sat."], references=["the cat sat on the mat"]) == pytest.approx(
        {"rouge1": 2 / 3, "rougeL": 2 / 3})
    # Reordered: every word matches (ROUGE-1 = 1) but the longest common subsequence is "the cat", 2 of 3.
    # Means over pairs: the second pair shares nothing (0), and an empty answer scores 0.
    got = rouge.compute(predictions=["sat the cat", "dog", ""], references=["the cat sat", "cat", "cat"])
    assert got == pytest.approx({"rouge1": (1 + 0 + 0) / 3, "rougeL": (2 / 3 + 0 + 0) / 3})


def test_accuracy():
    accuracy = metrics.load("accuracy")
    assert accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0]) == {"accuracy": 0.75}
    assert accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], normalize=False)["accuracy"] == 3.0
    # Right answers weigh 1 + 1 + 0, the wrong one 2: 2 / 4.
    weighted = accuracy.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0], sample_weight=[1, 1, 2, 0])
    assert weighted["accuracy"] == pytest.approx(0.5)


def test_binary_f1_precision_recall():
    kw = dict(predictions=BIN_PREDS, references=BIN_REFS)
    assert metrics.load("f1").compute(**kw)["f1"] == pytest.approx(4 / 7)
    assert metrics.load("precision").compute(**kw)["precision"] == pytest.approx(2 / 3)
    assert metrics.load("recall").compute(**kw)["recall"] == pytest.approx(1 / 2)
    assert metrics.load("f1").compute(**kw, pos_label=0)["f1"] == pytest.approx(2 / 5)


def test_macro_and_per_class_scores():
    kw = dict(predictions=MC_PREDS, references=MC_REFS)
    f1 = metrics.load("f1")
    assert f1.compute(**kw, average="macro")["f1"] == pytest.approx(59 / 90)
    assert f1.compute(**kw, average="micro")["f1"] == pytest.approx(2 / 3)
    per_class = f1.compute(**kw, average=None)["f1"]
    assert isinstance(per_class, list) and per_class == pytest.approx([1 / 2, 4 / 5, 2 / 3])
    assert f1.compute(**kw, average=None, labels=[2, 0])["f1"] == pytest.approx([2 / 3, 1 / 2])
    assert metrics.load("precision").compute(**kw, average=None)["precision"] == pytest.approx([1 / 2, 2 / 3, 1])
    assert metrics.load("recall").compute(**kw, average=None)["recall"] == pytest.approx([1 / 2, 1, 1 / 2])


def test_zero_division():
    precision = metrics.load("precision")  # nothing is predicted positive: precision is 0/0
    assert precision.compute(predictions=[0, 0], references=[0, 1])["precision"] == 0.0
    assert precision.compute(predictions=[0, 0], references=[0, 1], zero_division=1)["precision"] == 1.0


def test_perplexity():
    perplexity = metrics.load("perplexity")
    result = perplexity.compute(nll=[2.0, 4.0], n_tokens=[1, 3])
    assert result["perplexity"] == pytest.approx(math.exp(1.5))
    assert result["mean_nll"] == pytest.approx(1.5)
    assert result["n_tokens"] == 4


def test_perplexity_rejects_zero_tokens_and_recovers():
    perplexity = metrics.load("perplexity")
    with pytest.raises(ValueError, match="at least one scored token"):
        perplexity.compute(nll=[0.0, 0.0], n_tokens=[0, 0])
    # The cached module must still work after a failed compute.
    assert perplexity.compute(nll=[3.0], n_tokens=[3])["perplexity"] == pytest.approx(math.e)


def test_exact_match():
    exact_match = metrics.load("exact_match")
    kw = dict(predictions=["Paris", "london", " Rome ", "Oslo!"], references=["Paris", "London", "Rome", "oslo"])
    assert exact_match.compute(**kw) == {"exact_match": 0.5}  # Paris, Rome (stripped)
    assert exact_match.compute(**kw, strip=False)["exact_match"] == 0.25  # only Paris
    assert exact_match.compute(**kw, ignore_case=True)["exact_match"] == 0.75  # + london
    assert exact_match.compute(**kw, ignore_case=True, ignore_punctuation=True)["exact_match"] == 1.0


def test_classification_metrics_three_classes():
    result = metrics.classification_metrics(MC_PREDS, MC_REFS, num_labels=3)
    assert result == pytest.approx({"accuracy": 2 / 3, "macro_f1": 59 / 90, "f1": 59 / 90})
    assert all(type(value) is float for value in result.values())


def test_classification_metrics_binary_uses_positive_class():
    result = metrics.classification_metrics(BIN_PREDS, BIN_REFS, num_labels=2)
    assert result == pytest.approx({"accuracy": 1 / 2, "macro_f1": (4 / 7 + 2 / 5) / 2, "f1": 4 / 7})


def test_classification_metrics_rejects_fewer_than_two_labels():
    with pytest.raises(FtkitError):
        metrics.classification_metrics([0], [0], num_labels=1)


def test_loads_offline_in_a_fresh_interpreter():
    # The offline variables must be set before evaluate/datasets are imported, hence a new process.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    script = (
        "from ftkit import metrics\n"
        "for name in metrics.AVAILABLE: metrics.load(name)\n"
        "print(metrics.load('accuracy').compute(predictions=[1, 0], references=[1, 1])['accuracy'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.5"


def test_predictions_outside_the_labels_count_as_wrong():
    # a generated answer that is no label word arrives as -1
    scores = metrics.classification_metrics([0, -1, 1, -1], [0, 1, 1, 0], 2)
    assert scores["accuracy"] == 0.5
    assert scores["f1"] == pytest.approx(2 / 3)  # class 1: precision 1, recall 1/2
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
