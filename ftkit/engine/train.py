"""The classification training recipe the notebooks share, written out so a reader can follow it.

transformers.Trainer does all of this too; we keep a short loop because it is the recipe users copy,
and because it is faster on CPU (benchmarks/train_speed.py measures it against a plain loop and Trainer):
dynamic padding with batches of near-equal length (``buckets.py``: little compute spent on padding), bf16
autocast where the hardware has bf16 units (fp32 master weights), dropout masks from cheaper random bits on
CPU (``dropout.py``), frozen weights kept in bf16 for the run, AdamW's fused
kernel, a causal LM's output layer run only where labels are (``losses.label_loss``), batched evaluation under
``torch.inference_mode()``.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..platform import checkpoint
from . import data, losses, schedules
from .buckets import LengthBuckets
from .dropout import fast_dropout
from . import metrics as ftmetrics
from ..platform.errors import FtkitError
from ..platform.runtime import autocast, bf16_frozen_weights

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def tokenize(ds, tokenizer, max_length: int):
    """Token ids per example, unpadded (the collator pads each batch to its own longest example)."""
    keep = {"label"}
    return data.map_rows(ds, lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                         remove_columns=[c for c in ds.column_names if c not in keep])


def loader(tokenized, tokenizer, batch_size: int, shuffle: bool, seed: int = 0, collate_fn=None,
           buckets: bool = True) -> DataLoader:
    """Batches of similar length; ``collate_fn`` pads them (default: ``DataCollatorWithPadding``).
    ``buckets``: near-equal lengths in random order (``buckets.LengthBuckets``); False: transformers'
    ``LengthGroupedSampler`` (more padding, long and short batches alternating)."""
    lengths = [len(ids) for ids in tokenized["input_ids"]]
    if "label" in tokenized.column_names:
        tokenized = tokenized.rename_column("label", "labels")
    collate = collate_fn or DataCollatorWithPadding(tokenizer)
    order = torch.Generator().manual_seed(seed)
    if shuffle and buckets:  # a new order every epoch
        batches = DataLoader(tokenized, batch_sampler=LengthBuckets(lengths, batch_size, order), collate_fn=collate)
    else:  # LengthGroupedSampler; for evaluation by length, order does not matter
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=order) if shuffle else \
            sorted(range(len(lengths)), key=lengths.__getitem__)
        batches = DataLoader(tokenized, batch_size=batch_size, sampler=sampler, collate_fn=collate)
    batches.task = "classification"  # what fit reads (lm.loader says "causal-lm")
    return batches


def decay_groups(named_params, weight_decay: float, **options) -> list[dict]:
    """Two optimizer groups: weight matrices with ``weight_decay``, biases and norm weights without."""
    decay, no_decay = [], []
    for name, p in named_params:
        (no_decay if name.endswith(NO_DECAY) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, **options},
            {"params": no_decay, "weight_decay": 0.0, **options}]


def optimizer_groups(model, weight_decay: float, frozen_too: bool = False) -> list[dict]:
    """Weight decay on weight matrices only, not on biases and norm weights. ``frozen_too`` includes frozen
    parameters as well (for gradual unfreezing: AdamW skips a parameter until it has a gradient)."""
    return decay_groups([(n, p) for n, p in model.named_parameters() if p.requires_grad or frozen_too],
                        weight_decay)


def fit(model, tokenizer, train_ds, *, epochs: int, lr: float | None = None, batch_size: int, device,
        max_length: int = 128, weight_decay: float = 0.01, warmup: float = 0.1, max_grad_norm: float = 1.0,
        seed: int = 0, eval_ds=None, bf16: bool = True, param_groups=None, optimizer=None, schedule="linear",
        task: str | None = None, loss=None, label_smoothing: float = 0.0, penalty=None, accumulate: int = 1,
        on_epoch_start=None, on_step=None, early_stopping=None, best_dir=None, best_metric: str = "macro_f1",
        checkpoint_dir=None, checkpoint_every: int | None = None, log: bool = True) -> list[dict]:
    """Train in place with AdamW, linear warmup then decay, clipping; returns one record per epoch, each
    with the epoch's mean training loss, its per-step losses and learning rates, and validation metrics.

    ``train_ds``: a labelled dataset (tokenized here), or a ready DataLoader of model inputs with labels
    (``lm.loader`` makes one for a causal LM).
    ``task``: "classification" or "causal-lm"; by default the loader's own (``train.loader`` and
    ``lm.loader`` say which). It picks the loss (``losses.for_task``) and what a micro-batch weighs.
    ``loss(model, batch)``: the loss instead (``losses.model_loss`` keeps terms a model adds to its own loss).
    ``label_smoothing``: cross-entropy with smoothed targets instead of the model's own loss (classifiers).
    ``penalty(model)``: a term added to every step's loss (``ewc.Penalty`` holds weights near their old values).
    ``param_groups``: optimizer groups (default: ``optimizer_groups``); a group may set its own "lr".
    ``optimizer``: a ready optimizer instead of AdamW (LoRA+ builds its own); ``lr`` is then its own.
    ``schedule``: a transformers scheduler name ("linear", "cosine", "constant", "constant_with_warmup"), or
    ``schedule(optimizer, warmup_steps, total_steps)`` returning a scheduler (the range test uses one).
    ``accumulate``: micro-batches of ``batch_size`` per optimizer step (gradient accumulation).
    ``on_epoch_start(epoch)``: called before each epoch (gradual unfreezing uses it).
    ``on_step(step)``: called after each optimizer step, before the gradients are cleared (AdaLoRA's
    ``update_and_allocate`` reads them); ``step`` counts from 0.
    ``early_stopping``: an ``early_stopping.EarlyStopping``, asked after each validation whether to stop.
    ``best_dir``: save the model there (safetensors) whenever the validation ``best_metric`` improves.
    ``checkpoint_dir``: write a checkpoint there at the end of each epoch (and every ``checkpoint_every``
    optimizer steps), and resume from the latest one found there: a killed run started again with the same
    arguments ends with the same weights and metrics as a run that was never interrupted (``checkpoint.Run``).
    ``log``: a progress bar and one line per epoch (off for the many short runs of a sweep).
    """
    model.to(device)
    batches = _loader(model, tokenizer, train_ds, eval_ds, batch_size, max_length, seed)
    task = _task(batches, task)
    loss = loss or losses.for_task(task, label_smoothing)
    opt = optimizer or _adamw(param_groups or optimizer_groups(model, weight_decay), lr, device)
    steps_per_epoch = math.ceil(len(batches) / accumulate)
    total = epochs * steps_per_epoch
    sched = _scheduler(schedule, opt, math.ceil(warmup * total), total)
    run = checkpoint.Run(checkpoint_dir, model=model, optimizer=opt, scheduler=sched, total_steps=total,
                         every=checkpoint_every, keep=early_stopping, log=log)
    # the data order's own RNG: LengthBuckets is the batch sampler, LengthGroupedSampler the sampler
    order = getattr(batches.batch_sampler, "generator", None) or getattr(batches.sampler, "generator", None)
    # frozen weights in bf16 for the run (autocast would cast them at every step); not when weights are saved
    # during the run or layers unfreeze
    frozen_bf16 = bf16 and on_epoch_start is None and best_dir is None and checkpoint_dir is None \
        and early_stopping is None
    with bf16_frozen_weights(model, device, enabled=frozen_bf16), fast_dropout(model, device):
        for epoch in run.epochs(epochs):
            for e in run.replayed(epoch) if on_epoch_start is not None else ():
                on_epoch_start(e)
            model.train()
            bar = partial(tqdm, batches, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not log)
            for group in run.start_epoch(epoch, order, lambda: _groups(bar(), accumulate)):
                lr_now = opt.param_groups[0]["lr"]
                step_loss = train_step(model, group, optimizer=opt, scheduler=sched, loss=loss,
                                       unit=losses.unit(task), device=device, bf16=bf16, penalty=penalty,
                                       max_grad_norm=max_grad_norm,
                                       on_step=None if on_step is None else partial(on_step, run.step))
                run.stepped(step_loss, lr_now, steps_per_epoch)
            record = {"epoch": epoch, "train_loss": float(np.mean(run.losses)), "step_losses": run.losses,
                      "step_lrs": run.lrs}
            if eval_ds is not None:
                record.update({f"val_{k}": v for k, v in evaluate(model, tokenizer, eval_ds, device=device,
                                                                  batch_size=batch_size * 2,
                                                                  max_length=max_length, bf16=bf16).items()})
                if best_dir is not None and record[f"val_{best_metric}"] > run.best:
                    run.best = record[f"val_{best_metric}"]
                    model.save_pretrained(best_dir)  # safetensors
                    record["saved"] = True
            if log:
                print(", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
                                if not isinstance(v, list)))
            stop = early_stopping is not None and early_stopping.step(record, model)
            run.end_epoch(record, stop)
            if stop:
                if log:
                    print(f"early stopping: no improvement of {early_stopping.monitor} for "
                          f"{early_stopping.patience} epochs, best at epoch {early_stopping.best_epoch}")
                break
    return run.history


def train_step(model, micro_batches, *, optimizer, scheduler, loss, unit: str, device, bf16: bool = True,
               penalty=None, max_grad_norm: float = 1.0, on_step=None) -> float:
    """One optimizer step on k micro-batches (gradient accumulation); returns the step's loss.

    Each micro-batch's loss is weighted by its share of the examples (``unit`` "examples") or of the label
    tokens of a causal LM ("tokens"), so the gradient is the one big batch's (notebook 10 proves it)."""
    counts = [losses.items(b, unit) for b in micro_batches]
    step_loss = 0.0
    for batch, n in zip(micro_batches, counts):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, bf16):
            value = loss(model, batch)
        if penalty is not None:
            value = value + penalty(model)
        (value * (n / sum(counts))).backward()
        step_loss += value.item() * n / sum(counts)
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    scheduler.step()
    if on_step is not None:
        on_step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss


def _loader(model, tokenizer, train_ds, eval_ds, batch_size, max_length, seed) -> DataLoader:
    """The training batches: ``train_ds`` itself if it is a DataLoader, else its length-bucketed batches;
    labels checked against the model's classes first."""
    for ds in (train_ds, eval_ds):
        if ds is not None and not isinstance(ds, DataLoader):
            check_labels(model, ds)
    if isinstance(train_ds, DataLoader):
        return train_ds
    return loader(tokenize(train_ds, tokenizer, max_length), tokenizer, batch_size, shuffle=True, seed=seed)


def _task(batches, task):
    task = task or getattr(batches, "task", None)
    if task not in losses.TASKS:
        raise FtkitError(f"task must be one of {', '.join(losses.TASKS)}, got {task!r}: pass fit(task=...) for a "
                         "DataLoader of your own (train.loader and lm.loader set it)")
    return task


def _adamw(groups, lr, device):
    if lr is None:
        raise FtkitError("fit needs lr (or a ready optimizer=)")
    return torch.optim.AdamW(groups, lr=lr, fused=torch.device(device).type in ("cpu", "cuda"))  # one kernel


def _scheduler(schedule, optimizer, warmup_steps: int, total_steps: int):
    if callable(schedule):
        return schedule(optimizer, warmup_steps, total_steps)
    return get_scheduler(schedules.check(schedule), optimizer, warmup_steps, total_steps)


def check_labels(model, ds) -> None:
    """Labels the model has classes for, or a one-line error (torch would fail mid-epoch, deep in the loss)."""
    n = getattr(getattr(model, "config", None), "num_labels", None)
    if n is None or "label" not in getattr(ds, "column_names", ()) or not len(ds):
        return
    labels = ds["label"]
    low, high = min(labels), max(labels)
    if low < 0 or high >= n:
        raise FtkitError(f"the data has labels {low}..{high} but the model has {n} classes (0..{n - 1}): load it "
                         f"with num_labels={high + 1}, or map the labels to 0..{n - 1}")


def _groups(batches, k: int):
    """Consecutive runs of ``k`` batches (the last run may be shorter)."""
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == k:
            yield group
            group = []
    if group:
        yield group


@torch.inference_mode()
def map_sorted(fn, tokenizer, ds, *, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """``fn(batch)`` over ``ds`` in batches sorted by length (least padding), rows back in dataset order."""
    batches = loader(tokenize(ds, tokenizer, max_length), tokenizer, batch_size, shuffle=False)
    rows = torch.cat([fn({k: v for k, v in b.items() if k != "labels"}).float().cpu() for b in batches]).numpy()
    result = np.empty_like(rows)
    result[list(batches.sampler)] = rows
    return result


def predict(model, tokenizer, ds, *, device, batch_size: int = 64, max_length: int = 128,
            bf16: bool = True) -> np.ndarray:
    """Logits for every example of ``ds``, in the dataset's order."""
    model.to(device).eval()

    def logits(batch):
        with autocast(device, bf16):
            return model(**{k: v.to(device) for k, v in batch.items()}).logits
    return map_sorted(logits, tokenizer, ds, batch_size=batch_size, max_length=max_length)


def evaluate(model, tokenizer, ds, *, device, batch_size: int = 64, max_length: int = 128,
             bf16: bool = True) -> dict:
    """Accuracy, macro F1 and F1 on ``ds`` (computed by the local evaluate modules), and the mean
    cross-entropy loss."""
    check_labels(model, ds)
    logits = predict(model, tokenizer, ds, device=device, batch_size=batch_size, max_length=max_length, bf16=bf16)
    num_labels = logits.shape[-1]
    scores = ftmetrics.classification_metrics(logits.argmax(-1).tolist(), list(ds["label"]), num_labels)
    loss = F.cross_entropy(torch.from_numpy(logits), torch.tensor(list(ds["label"]))).item()
    return {**scores, "loss": loss}
