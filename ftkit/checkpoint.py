"""Training checkpoints that survive a kill, and the resume that continues as if nothing happened.

transformers.Trainer checkpoints and resumes too (``resume_from_checkpoint``); ``train.fit`` is our own loop,
so it needs its own, written here. A checkpoint is a folder with everything the next step depends on:

    model.safetensors   the weights (safetensors: loading it runs no code)
    optimizer.pt        AdamW's moments and step counts   (read back with torch.load(weights_only=True))
    scheduler.pt        the learning-rate schedule's position
    rng.json            torch (CPU and CUDA), numpy and Python random states
    state.json          epoch, step, the epoch's data-order state, the history so far, the best metric
    extra.safetensors   tensors a caller keeps besides the model (early stopping's best weights)

Atomic: the folder is written under a temporary name, its files flushed to disk, then renamed into place;
only then does the small ``latest`` file (itself replaced atomically) point to it, and older checkpoints
are deleted. A kill at any moment leaves ``latest`` pointing to a complete checkpoint.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from .errors import FtkitError

LATEST = "latest"


def rng_state() -> dict:
    """Every random state a training step draws from, as lists (ready for JSON)."""
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, *np_rest = np.random.get_state()
    return {"torch": torch.get_rng_state().tolist(),
            "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
            "python": [py_version, list(py_internal), py_gauss],
            "numpy": [np_name, np_keys.tolist(), *np_rest]}


def set_rng_state(state: dict) -> None:
    as_bytes = lambda values: torch.tensor(values, dtype=torch.uint8)  # noqa: E731
    torch.set_rng_state(as_bytes(state["torch"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([as_bytes(s) for s in state["cuda"]])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically: write a temporary file, flush it, rename it over the old one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    _fsync(tmp)
    os.replace(tmp, path)


def save(folder, *, model, optimizer, scheduler, state: dict, extra: dict | None = None) -> Path:
    """Write one checkpoint under ``folder`` (named for ``state["step"]``) and point ``latest`` to it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['step']:07d}"
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))  # shared (tied) tensors stored once
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    (tmp / "rng.json").write_text(json.dumps(rng_state()))
    (tmp / "state.json").write_text(json.dumps(state, default=_json_default))
    if extra:
        save_file({k: v.contiguous() for k, v in extra.items()}, str(tmp / "extra.safetensors"))
    for f in tmp.iterdir():
        _fsync(f)
    target = folder / name
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    _fsync(folder)
    _write_text(folder / LATEST, name)
    for old in folder.iterdir():  # older checkpoints and temporary folders of killed saves
        if old.is_dir() and old.name != name and (old.name.startswith("step-") or old.name.endswith(".tmp")):
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest(folder) -> Path | None:
    """The newest complete checkpoint in ``folder``, or None."""
    pointer = Path(folder) / LATEST
    if not pointer.exists():
        return None
    path = Path(folder) / pointer.read_text().strip()
    if not (path / "state.json").exists():
        raise FtkitError(f"checkpoint folder {str(folder)!r} points to {path.name}, which is incomplete: "
                         "delete the folder to start over")
    return path


def load(folder, *, model, optimizer, scheduler) -> tuple[dict, dict] | None:
    """Restore model, optimizer, scheduler and random states from the latest checkpoint; return its state and
    its extra tensors, or None when there is no checkpoint."""
    path = latest(folder)
    if path is None:
        return None
    try:
        load_model(model, str(path / "model.safetensors"), device=str(next(model.parameters()).device))
    except RuntimeError as e:
        raise FtkitError(f"checkpoint {str(path)!r} is for a different model ({str(e).splitlines()[0][:120]}): "
                         "give a new output folder or delete the old checkpoints") from None
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    set_rng_state(json.loads((path / "rng.json").read_text()))
    extra = load_file(str(path / "extra.safetensors")) if (path / "extra.safetensors").exists() else {}
    return json.loads((path / "state.json").read_text()), extra


def generator_state(g: torch.Generator | None) -> list | None:
    return None if g is None else g.get_state().tolist()


def set_generator_state(g: torch.Generator | None, state: list | None) -> None:
    if g is not None and state is not None:
        g.set_state(torch.tensor(state, dtype=torch.uint8))


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
