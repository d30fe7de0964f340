"""Learning-rate schedules, and the learning-rate range test (Smith, 2017) to find a rate to start from.

The schedules are transformers' own (``get_scheduler``); ``train.fit(schedule=...)`` takes their names.
The range test trains for a short run while the rate grows geometrically from tiny to far too large, and
reads off where the loss falls fastest and where it turns up: no library we use offers it for a plain
loop, so it is written here (a ``LambdaLR`` and a smoothed loss curve).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_scheduler

from ..platform.errors import one_of

SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


def check(name: str) -> str:
    """A known schedule name, or a one-line error listing them."""
    if name not in SCHEDULES:
        raise one_of("schedule", name, SCHEDULES)
    return name


def curve(name: str, total: int, warmup: int) -> list[float]:
    """The multiplier of the peak rate at every step of a schedule (for plotting)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = get_scheduler(check(name), opt, num_warmup_steps=warmup, num_training_steps=total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def range_test(lr_min: float, lr_max: float):
    """A ``schedule`` for ``train.fit`` (called with ``lr=lr_min``, ``warmup=0``): the rate grows
    geometrically from ``lr_min`` to ``lr_max`` over the run."""
    def make(optimizer, warmup_steps, total_steps):
        return LambdaLR(optimizer, lambda step: (lr_max / lr_min) ** (step / max(1, total_steps - 1)))
    return make


def smooth(losses, beta: float = 0.8) -> np.ndarray:
    """Exponential moving average with bias correction (the first steps are not pulled towards 0)."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, 1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return np.array(out)


def suggest(lrs, losses, beta: float = 0.8) -> dict:
    """Read a range test: the rate where the smoothed loss falls fastest (per decade of rate), the rate at
    its minimum, and the rule of thumb of one tenth of the latter."""
    lrs, smoothed = np.asarray(lrs), smooth(losses, beta)
    low = int(np.argmin(smoothed))
    slope = np.gradient(smoothed, np.log10(lrs))
    steepest = int(np.argmin(slope[: max(low, 1) + 1]))
    return {"steepest": float(lrs[steepest]), "minimum": float(lrs[low]), "tenth_of_minimum": float(lrs[low] / 10)}
