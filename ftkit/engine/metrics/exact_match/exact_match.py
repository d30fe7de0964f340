"""Exact match: the fraction of predicted strings equal to their reference, after optional normalising."""

import string

import datasets
import evaluate
import numpy as np

_INPUTS = """
predictions (list of str): predicted texts.
references (list of str): reference texts.
ignore_case (bool, default False): lowercase both sides first.
ignore_punctuation (bool, default False): delete ASCII punctuation (string.punctuation) first.
strip (bool, default True): remove leading and trailing whitespace first.
Returns: {"exact_match": float}
"""

_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _normalise(text, ignore_case, ignore_punctuation, strip):
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_NO_PUNCTUATION)
    return text.strip() if strip else text


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Fraction of predictions that equal their reference string exactly.",
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, ignore_case=False, ignore_punctuation=False, strip=True):
        options = (ignore_case, ignore_punctuation, strip)
        matches = [_normalise(p, *options) == _normalise(r, *options) for p, r in zip(predictions, references)]
        return {"exact_match": float(np.mean(matches)) if matches else 0.0}
