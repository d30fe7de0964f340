"""Precision: scikit-learn's precision_score for single-label classification."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import precision_score

_INPUTS = """
predictions (list of int): predicted labels.
references (list of int): true labels.
labels (list of int, optional): the labels to include, and their order when average=None.
pos_label (int, default 1): the positive class when average="binary".
average (str or None, default "binary"): "binary", "micro", "macro", "weighted",
    or None for one score per class (returned as a list).
sample_weight (list of float, optional): a weight per example.
zero_division (0, 1 or "warn", default 0): the score used when a class has no support.
Returns: {"precision": float, or a list of floats when average=None}
"""


class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Precision = TP / (TP + FP): the fraction of predicted positives that are correct.",
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
        )

    def _compute(
        self, predictions, references, labels=None, pos_label=1, average="binary",
        sample_weight=None, zero_division=0,
    ):
        score = precision_score(
            references, predictions, labels=labels, pos_label=pos_label, average=average,
            sample_weight=sample_weight, zero_division=zero_division,
        )
        return {"precision": float(score) if np.ndim(score) == 0 else [float(s) for s in score]}
