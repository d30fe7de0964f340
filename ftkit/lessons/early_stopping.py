"""Early stopping that ends with the best weights, not the last ones.

The common hand-written recipe stops once the validation metric has not improved for ``patience`` epochs
and returns the model as it is then: ``patience`` epochs past its best. ``EarlyStopping`` keeps a copy of
the weights of the best epoch and puts them back with ``restore``. transformers does the same with
``EarlyStoppingCallback`` (``early_stopping_patience``, ``early_stopping_threshold``) together with
``load_best_model_at_end=True``, which reloads the best checkpoint from disk; notebook 11 runs both.

    stopper = EarlyStopping("val_loss", mode="min", patience=2, min_delta=0.001)
    train.fit(model, tok, ds["train"], eval_ds=ds["validation"], early_stopping=stopper, ...)
    stopper.restore(model)
"""
from __future__ import annotations

import math

from ..platform.errors import FtkitError


class EarlyStopping:
    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 2, min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise FtkitError(f"early stopping mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch, self.stopped_epoch, self.bad_epochs, self.state = None, None, 0, None

    def improved(self, value: float) -> bool:
        """Better than the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, record: dict, model) -> bool:
        """Look at one epoch's record; keep the weights if it is the best; True when training should stop."""
        if self.monitor not in record:
            raise FtkitError(f"early stopping monitors {self.monitor!r}, which the epoch record lacks "
                             f"({', '.join(k for k in record if not isinstance(record[k], list))}): pass eval_ds")
        if self.improved(record[self.monitor]):
            self.best, self.best_epoch, self.bad_epochs = record[self.monitor], record["epoch"], 0
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.stopped_epoch = record["epoch"]
            return True
        return False

    def restore(self, model) -> None:
        """Put the best epoch's weights back into ``model``."""
        if self.state is None:
            raise FtkitError("early stopping has no best weights yet: train with it first")
        model.load_state_dict(self.state)
