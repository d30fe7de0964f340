"""How far to trust a classifier's probabilities: reliability bins, expected calibration error (ECE), and
temperature scaling (Guo et al., 2017), plus the error table of its most confident mistakes.

    probs = calibration.softmax(logits)
    calibration.ece(probs, labels)                       # 0: confidence equals accuracy in every bin
    t = calibration.fit_temperature(val_logits, val_labels)
    calibration.ece(calibration.softmax(test_logits / t), test_labels)

Written here: evaluate has no calibration metric and scikit-learn's calibrators wrap its own estimators, not
a network's logits. Each function is a few lines of numpy or torch.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..platform.errors import FtkitError


def softmax(logits) -> np.ndarray:
    return torch.softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), -1).numpy()


def reliability(probs, labels, bins: int = 10) -> pd.DataFrame:
    """One row per confidence bin (equal width over [0, 1]): examples, mean confidence, accuracy."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if len(probs) != len(labels) or len(probs) == 0:
        raise FtkitError(f"reliability needs one probability row per label, got {len(probs)} and {len(labels)}")
    confidence, correct = probs.max(-1), probs.argmax(-1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "examples": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()) if (which == b).any() else np.nan,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else np.nan}
            for b in range(bins)]
    return pd.DataFrame(rows)


def ece(probs, labels, bins: int = 10) -> float:
    """Expected calibration error: the gap |accuracy - confidence| of each bin, weighted by its share."""
    table = reliability(probs, labels, bins).dropna()
    return float((table.examples * (table.accuracy - table.confidence).abs()).sum() / table.examples.sum())


def fit_temperature(logits, labels, steps: int = 200) -> float:
    """The temperature T > 0 that minimises the cross-entropy of softmax(logits / T) on held-out data. It
    rescales confidence without changing any prediction (the argmax is the same for every T)."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels = torch.as_tensor(np.asarray(labels))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps)

    def nll():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss
    opt.step(nll)
    return float(log_t.detach().exp())


def confident_mistakes(texts, labels, probs, names, k: int = 10) -> pd.DataFrame:
    """The ``k`` wrong predictions made with the highest confidence: where to look for label noise,
    ambiguous examples and what the model has learned wrong."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    pred = probs.argmax(-1)
    wrong = np.flatnonzero(pred != labels)
    top = wrong[np.argsort(-probs[wrong].max(-1), kind="stable")[:k]]
    return pd.DataFrame({"text": [texts[i] for i in top], "label": [names[labels[i]] for i in top],
                         "predicted": [names[pred[i]] for i in top],
                         "confidence": probs[top].max(-1).round(3)})
