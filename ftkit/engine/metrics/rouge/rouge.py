"""ROUGE-1 and ROUGE-L F1 (Lin, 2004) between generated and reference texts, on lowercased word tokens.

Written here because the hub's "rouge" module is fetched at run time and wraps the rouge_score package;
this one needs nothing. Tokens are runs of letters and digits (punctuation and case ignored), no stemming.
"""

import re
from collections import Counter

import datasets
import evaluate
import numpy as np

_INPUTS = """
predictions (list of str): generated texts.
references (list of str): reference texts.
Returns: {"rouge1": float, "rougeL": float}, each the mean F1 over the pairs.
"""


def _tokens(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def _f1(overlap, n_pred, n_ref):
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def _lcs(a, b):
    """Length of the longest common subsequence, by dynamic programming over one row."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE-1 and ROUGE-L F1 on lowercased word tokens.",
            citation="Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        r1, rl = [], []
        for p, r in zip(predictions, references):
            p, r = _tokens(p), _tokens(r)
            r1.append(_f1(sum((Counter(p) & Counter(r)).values()), len(p), len(r)))
            rl.append(_f1(_lcs(p, r), len(p), len(r)))
        return {"rouge1": float(np.mean(r1)) if r1 else 0.0, "rougeL": float(np.mean(rl)) if rl else 0.0}
