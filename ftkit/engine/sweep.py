"""Comparisons that depend on chance: a fresh pretrained classifier per run, several seeds, mean and spread.

One fine-tuning run says little when the difference between two settings is the size of the difference
between two seeds. ``classifier_run`` trains one fresh model with ``train.fit`` and scores it on the test
split; ``summarise`` turns one row per run into mean, standard deviation and the per-seed values; ``seeds``
says which seeds a profile runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import models, train
from ..platform import runtime


@dataclass
class Run:
    model: object
    tokenizer: object
    history: list
    test: dict


def classifier_run(model_name: str, ds, *, seed: int, device, config: dict | None = None, split: str = "test",
                   log: bool = False, **fit_args) -> Run:
    """Seed, load a fresh classifier (``config`` overrides its configuration, e.g. dropout), ``train.fit`` it
    on ``ds["train"]`` (quietly, unless ``log``) and evaluate it on ``ds[split]``."""
    runtime.seed_everything(seed)
    labels = ds["train"].features["label"].names
    model, tok = models.load_classifier(model_name, num_labels=len(labels), labels=labels, **(config or {}))
    history = train.fit(model, tok, ds["train"], seed=seed, device=device, log=log, **fit_args)
    return Run(model, tok, history, train.evaluate(model, tok, ds[split], device=device))


def seeds(profile, first: int, n: int) -> list[int]:
    """The seeds of a sweep: ``n`` from ``first``, at most 2 on the smoke and cpu profiles (to stay short)."""
    return list(range(first, first + (n if profile.name == "gpu" else min(n, 2))))


def summarise(rows: pd.DataFrame, by, metric: str) -> pd.DataFrame:
    """Mean, sd (over seeds, ddof=1) and the per-seed values of ``metric`` for each setting ``by``."""
    grouped = rows.groupby(by, sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).rename(columns={"std": "sd", "count": "seeds"})
    out["values"] = grouped.apply(lambda v: ", ".join(f"{x:.3f}" for x in v))
    return out
