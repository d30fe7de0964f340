"""Baselines that every gain is measured against: the untrained head and a linear probe.

A linear probe fits a logistic regression (scikit-learn) on frozen, mean-pooled encoder features: what
the pretrained representation knows about the task before any of its weights move.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from ..engine import metrics
from ..platform.runtime import autocast
from ..engine.train import map_sorted


def embed(model, tokenizer, ds, *, device, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """Mean-pooled last hidden states of the model's encoder, one row per example, in dataset order."""
    encoder = model.base_model.to(device).eval()

    def pooled(batch):
        mask = batch["attention_mask"].to(device)
        with autocast(device):
            hidden = encoder(input_ids=batch["input_ids"].to(device), attention_mask=mask)[0].float()
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return map_sorted(pooled, tokenizer, ds, batch_size=batch_size, max_length=max_length)


def probe(model, tokenizer, train_ds, *, device, max_length: int = 128):
    """A logistic regression fitted on frozen features of ``train_ds``: returns ``probabilities(ds)``."""
    x_train = embed(model, tokenizer, train_ds, device=device, max_length=max_length)
    clf = LogisticRegression(max_iter=2000).fit(x_train, train_ds["label"])
    return lambda ds: clf.predict_proba(embed(model, tokenizer, ds, device=device, max_length=max_length))


def linear_probe(model, tokenizer, ds, *, device, split: str = "test", max_length: int = 128) -> dict:
    """Metrics on ``ds[split]`` of a logistic regression trained on frozen features of ``ds["train"]``."""
    probabilities = probe(model, tokenizer, ds["train"], device=device, max_length=max_length)
    num_labels = ds["train"].features["label"].num_classes
    predicted = probabilities(ds[split]).argmax(-1).tolist()
    return metrics.classification_metrics(predicted, list(ds[split]["label"]), num_labels)
