"""Profiles: one name that sets the scale of a notebook run.

- ``smoke``: tiny random-weight models built from a config and tens of examples; proves the code path
  in seconds, says nothing about quality.
- ``cpu``: the real built-in models, data sized so a notebook finishes in a few minutes on 2 cores.
- ``gpu``: CUDA, bf16, larger budgets.

``auto`` picks ``gpu`` when CUDA is present, else ``cpu``. The environment variable ``FTKIT_PROFILE``
overrides whatever a notebook asks for, so a test can run a notebook exactly as written (e.g. nbval).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import FtkitError, one_of

ENV_VAR = "FTKIT_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    device: str          # "cpu" or "cuda"
    real_models: bool    # False: built-in model names map to tiny random-weight stand-ins
    max_train: int       # default cap on training examples
    max_eval: int        # default cap on validation and test examples
    batch_size: int
    max_length: int      # default truncation length in tokens

    def pick(self, *, smoke, cpu, gpu):
        """The value for this profile: ``n = profile.pick(smoke=32, cpu=1000, gpu=8000)``."""
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.name]


PROFILES = {
    "smoke": Profile("smoke", "cpu", False, max_train=48, max_eval=32, batch_size=16, max_length=64),
    "cpu": Profile("cpu", "cpu", True, max_train=1000, max_eval=400, batch_size=32, max_length=128),
    "gpu": Profile("gpu", "cuda", True, max_train=8000, max_eval=2000, batch_size=64, max_length=256),
}


def _cuda() -> bool:
    import torch  # here, not at the top: naming a profile such as 'smoke' needs no torch

    return torch.cuda.is_available()


def get_profile(name: str = "auto") -> Profile:
    """Resolve a profile name; ``FTKIT_PROFILE`` in the environment wins over the argument."""
    name = os.environ.get(ENV_VAR) or name
    if not isinstance(name, str):
        raise FtkitError(f"parameter 'profile' must be a string such as 'cpu', got {name!r}")
    if name == "auto":
        name = "gpu" if _cuda() else "cpu"
    if name not in PROFILES:
        raise one_of("profile", name, [*PROFILES, "auto"])
    if name == "gpu" and not _cuda():
        raise FtkitError("profile 'gpu' needs CUDA, which this machine lacks: use profile='cpu' or 'auto'")
    return PROFILES[name]
