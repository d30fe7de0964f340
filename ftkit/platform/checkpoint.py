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


class Run:
    """A training run's bookkeeping, kept so that a killed run resumes exactly: the step, the epoch and the
    batches of it already trained, the per-step losses and learning rates, the epoch records, the best metric,
    and ``keep`` (an object whose attributes go into ``state.json`` and whose ``state`` dict of tensors into
    ``extra.safetensors``: early stopping and its best weights). With ``folder`` None nothing is written.

    ``train.fit`` drives it: ``epochs`` the epochs left to train, ``start_epoch`` for each epoch's batches (it
    puts the data order and random states back and skips the batches trained before a mid-epoch kill),
    ``stepped`` after each optimizer step (a checkpoint every ``every`` steps), ``end_epoch`` after each.
    """

    def __init__(self, folder, *, model, optimizer, scheduler, total_steps: int, every: int | None = None,
                 keep=None, log: bool = True):
        self.folder, self.every, self.keep, self.total = folder, every, keep, total_steps
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.step, self.epoch, self.history, self.best = 0, 1, [], -float("inf")
        self.losses, self.lrs, self.stopped, self._resume, self.resumed = [], [], False, None, False
        found = load(folder, model=model, optimizer=optimizer, scheduler=scheduler) if folder is not None else None
        if found is None:
            return
        state, extra = found
        if state["total_steps"] != total_steps:
            raise FtkitError(f"the checkpoint in {str(folder)!r} is from a run of {state['total_steps']} steps, "
                             f"this one has {total_steps}: resume with the same parameters, or give a new output "
                             "folder")
        if keep is not None and "keep" in state:
            vars(keep).update(state["keep"])
            keep.state = extra or None
        self.step, self.history, self.best, self.stopped = state["step"], state["history"], state["best"], \
            state["stopped"]
        self.epoch = state["epoch"] + state["epoch_complete"]  # a finished epoch is not trained again
        self.resumed, self._first = True, self.epoch
        if not state["epoch_complete"]:
            self._resume = state
        if log:
            print(f"resumed from step {state['step']} of {total_steps} (epoch {state['epoch']}) in {folder}")

    def epochs(self, last: int):
        """The epochs still to train, up to ``last``."""
        return range(self.epoch, last + 1) if not self.stopped else range(0)

    def replayed(self, epoch: int):
        """The epochs whose start a per-epoch callback must see before ``epoch`` trains: a resumed run replays
        the earlier epochs' calls (gradual unfreezing), a fresh one sees ``epoch`` alone."""
        return range(1 if self.resumed and epoch == self._first else epoch, epoch + 1)

    def start_epoch(self, epoch: int, generator, batches):
        """The iterator over ``epoch``'s batches, ``batches()``, whose data order is drawn from ``generator``.
        After a mid-epoch kill, the same batches as before: the epoch's start states put back before the
        iterator is made (making it draws random numbers), the batches already trained skipped, then the
        random state of the checkpoint (dropout continues where it stopped)."""
        self.epoch = epoch
        resume = self._resume if self._resume is not None and self._resume["epoch"] == epoch else None
        self._resume = None
        self.losses, self.lrs = ([], []) if resume is None else (resume["losses"], resume["lrs"])
        if resume is not None:
            now = rng_state()
            set_rng_state(resume["epoch_start"]["rng"])
            set_generator_state(generator, resume["epoch_start"]["generator"])
        self.epoch_start = {"rng": rng_state(), "generator": generator_state(generator)}
        batches = batches()
        if resume is not None:
            for _ in range(resume["steps_in_epoch"]):
                next(batches)
            set_rng_state(now)
        return batches

    def stepped(self, loss: float, lr: float, steps_per_epoch: int) -> None:
        """Record one optimizer step; a checkpoint every ``every`` steps, but not on an epoch's last step."""
        self.losses.append(loss)
        self.lrs.append(lr)
        self.step += 1
        if self.folder is not None and self.every and len(self.losses) % self.every == 0 \
                and len(self.losses) < steps_per_epoch:
            self.save()

    def end_epoch(self, record: dict, stop: bool = False) -> None:
        self.history.append(record)
        self.stopped = stop
        if self.folder is not None:
            self.save(epoch_complete=True)

    def save(self, epoch_complete: bool = False) -> Path:
        state = {"step": self.step, "epoch": self.epoch, "steps_in_epoch": len(self.losses),
                 "epoch_complete": epoch_complete, "stopped": self.stopped, "total_steps": self.total,
                 "history": self.history, "best": self.best, "losses": self.losses, "lrs": self.lrs,
                 "epoch_start": self.epoch_start}
        extra = {}
        if self.keep is not None:
            state["keep"] = {k: v for k, v in vars(self.keep).items() if k != "state"}
            extra = self.keep.state or {}
        return save(self.folder, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                    state=state, extra=extra)
