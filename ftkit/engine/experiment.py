"""One notebook run: checked parameters, profile, seed, device, timers, and ``results.json`` at the end.

    exp = ftkit.Experiment("00_quickstart", profile=profile, model=model, dataset=dataset, seed=seed,
                           output_dir=output_dir, lr=lr)
    with exp.timer("train"):
        ...
    exp.track(history, "LoRA r=8")      # the loss curve: TensorBoard files, and results.json for the report
    exp.finish(metrics={"f1": 0.93}, key_metric="f1", model=peft_model)

Everything a user can get wrong is checked in the constructor, before any training starts.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..platform import params, profiles, runtime
from ..platform.errors import FtkitError
from ..platform.paths import runs_root

RESULTS = "results.json"


def _models():
    from . import models

    return models


def _data():
    from . import data

    return data


class Experiment:
    def __init__(self, notebook: str, *, profile="auto", model=None, dataset=None, seed=0,
                 output_dir=None, **hyper):
        self.t0 = time.perf_counter()
        self.notebook = notebook
        self.profile = profiles.get_profile(profile)
        self.seed = params.check("seed", seed)
        self.params = params.check_all(hyper)
        self.model_requested = model
        # models and data (transformers, datasets) load only when asked for: the report notebook needs neither
        self.model = _models().resolve_name(model, self.profile) if model is not None else None
        if dataset is not None and dataset not in _data().BUILTIN:
            _data().load_dataset(dataset, max_train=1, max_eval=1)  # checks the file now, not mid-run
        self.dataset = dataset
        self.output_dir = self._output_dir(output_dir)
        self.device = runtime.get_device(self.profile)
        self.timings: dict[str, float] = {}
        self.peaks: dict[str, float] = {}  # MB, per timer
        self.curves: dict[str, list[float]] = {}
        runtime.seed_everything(self.seed)
        print(f"{notebook}: profile={self.profile.name} model={self.model} dataset={dataset} seed={self.seed} "
              f"device={runtime.device_name(self.device)} -> {self.output_dir}")
        if self.device.type == "cuda":  # on CPU the same seed repeats every digit (tests/test_checkpoint.py)
            print("on CUDA some kernels (cuBLAS reductions, attention backward) add in a varying order: the same "
                  "seed can differ in the last digits between runs, and from the CPU's numbers")

    def _output_dir(self, output_dir) -> Path:
        if output_dir in (None, ""):
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            return runs_root() / "interactive" / f"{self.notebook}-{stamp}-{os.getpid()}"
        if not isinstance(output_dir, (str, os.PathLike)):
            raise FtkitError(f"parameter 'output_dir' must be a folder path, got {output_dir!r}")
        path = Path(output_dir)
        _refuse_finished(path)
        return path

    @property
    def checkpoints(self) -> Path:
        """Where ``train.fit(checkpoint_dir=...)`` keeps this run's checkpoints: a run killed mid-training and
        started again with the same ``output_dir`` resumes from them. ``finish`` deletes them."""
        return self.output_dir / "checkpoints"

    def resolve_model(self, name: str, causal_lm: str | None = None) -> str:
        """What this profile loads for a model name (smoke swaps real models for tiny ones). ``causal_lm``: the
        parameter the name came from, where the notebook needs a causal LM: an encoder stops here, with one
        line naming that parameter, before anything trains."""
        resolved = _models().resolve_name(name, self.profile)
        if causal_lm is not None:
            _models().check_causal(name, causal_lm)  # named as the user wrote it
        return resolved

    def load_dataset(self, **caps):
        """The experiment's dataset with the profile's size caps (override with max_train=, max_eval=)."""
        return _data().load_dataset(self.dataset, profile=self.profile, **caps)

    @contextmanager
    def timer(self, name: str):
        """Time a block (seconds add up over blocks of the same name) and take its peak memory
        (``runtime.PeakMemory``: this block's, not the process's), both written to results.json."""
        start = time.perf_counter()
        try:
            with runtime.PeakMemory(self.device) as peak:
                yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            self.peaks[name] = max(self.peaks.get(name, 0.0), peak.mb or 0.0)

    @property
    def tensorboard(self) -> Path:
        """Where this run's TensorBoard event files go (``make tensorboard`` shows every run under runs/)."""
        return self.output_dir / "tensorboard"

    def track(self, history, name: str) -> None:
        """Record a training run's curves: per-step loss and learning rate, per-epoch validation metrics.

        ``history`` is what ``train.fit`` returns (or a plain list of per-step losses). The curves go to
        TensorBoard under ``self.tensorboard / name``, and the losses into results.json, where the comparison
        report draws the first curve each notebook tracks.
        """
        from torch.utils.tensorboard import SummaryWriter

        epochs = [{"step_losses": list(history)}] if history and not isinstance(history[0], dict) else history
        if not epochs or not all(e.get("step_losses") for e in epochs):
            raise FtkitError(f"track({name!r}): give train.fit's history or a list of per-step losses")
        losses, step = [], 0
        with SummaryWriter(self.tensorboard / name.replace("/", "_")) as writer:
            for epoch in epochs:
                for i, loss in enumerate(epoch["step_losses"]):
                    step += 1
                    writer.add_scalar("train/loss", loss, step)
                    if epoch.get("step_lrs"):
                        writer.add_scalar("train/lr", epoch["step_lrs"][i], step)
                losses += epoch["step_losses"]
                for key, value in epoch.items():
                    if key.startswith("val_") and isinstance(value, (int, float)):
                        writer.add_scalar(f"val/{key[4:]}", value, step)
        self.curves[name] = [round(float(x), 6) for x in losses]

    def finish(self, metrics: dict, key_metric: str, model=None, **extra) -> dict:
        """Write ``results.json`` to the output folder and return what was written."""
        if key_metric not in metrics:
            raise FtkitError(f"key_metric {key_metric!r} is not among the metrics ({', '.join(metrics)})")
        trainable, total = _models().count_params(model) if model is not None else (None, None)
        result = {
            "notebook": self.notebook, "profile": self.profile.name, "model": self.model,
            "model_requested": self.model_requested, "dataset": self.dataset, "seed": self.seed,
            "params": self.params, "metrics": metrics, "key_metric": key_metric,
            "trainable_params": trainable, "total_params": total,
            "train_seconds": round(self.timings.get("train", 0.0), 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "timing_peak_mb": {k: round(v, 1) for k, v in self.peaks.items()},
            "wall_seconds": round(time.perf_counter() - self.t0, 3),
            "peak_memory_mb": round(runtime.peak_memory_mb(self.device), 1),
            "device": runtime.device_name(self.device), "versions": runtime.versions(),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "curves": self.curves,
            **extra,
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.output_dir / f"{RESULTS}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(result, indent=2, default=float))
        try:  # unlike a rename, a link fails if another run finished here since we started
            os.link(tmp, self.output_dir / RESULTS)
        except FileExistsError:
            _refuse_finished(self.output_dir)
        finally:
            tmp.unlink()
        shutil.rmtree(self.checkpoints, ignore_errors=True)  # the run is finished: nothing left to resume
        return result


def _refuse_finished(path: Path) -> None:
    if (path / RESULTS).exists():
        raise FtkitError(f"output_dir {str(path)!r} already holds a finished run ({RESULTS}): "
                         "give a new output_dir or delete that folder")
