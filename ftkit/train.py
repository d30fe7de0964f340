"""The classification training recipe the notebooks share, written out so a reader can follow it.

transformers.Trainer does all of this too; we keep a short loop because it is the recipe users copy,
and because it is faster on CPU (benchmarks/train_speed.py measures it against a plain loop and Trainer):
dynamic padding with batches of near-equal length (``buckets.py``: little compute spent on padding), bf16
autocast where the hardware has bf16 units (fp32 master weights), dropout masks from cheaper random bits on
CPU (``dropout.py``), frozen weights kept in bf16 for the run, AdamW's fused
kernel, a causal LM's output layer run only where labels are (``lm.label_loss``), batched evaluation under
``torch.inference_mode()``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import batching, checkpoint, data, lm, schedules
from .buckets import LengthBuckets
from .dropout import fast_dropout
from . import metrics as ftmetrics
from .errors import FtkitError
from .runtime import autocast, bf16_frozen_weights

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
        return DataLoader(tokenized, batch_sampler=LengthBuckets(lengths, batch_size, order), collate_fn=collate)
    if shuffle:
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=order)
    else:  # evaluation: by length, order does not matter
        sampler = sorted(range(len(lengths)), key=lengths.__getitem__)
    return DataLoader(tokenized, batch_size=batch_size, sampler=sampler, collate_fn=collate)


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


def fit(model, tokenizer, train_ds, *, epochs: int, lr: float, batch_size: int, device, max_length: int = 128,
        weight_decay: float = 0.01, warmup: float = 0.1, max_grad_norm: float = 1.0, seed: int = 0,
        eval_ds=None, bf16: bool = True, param_groups=None, on_epoch_start=None, best_dir=None,
        best_metric: str = "macro_f1", schedule="linear", label_smoothing: float = 0.0,
        early_stopping=None, accumulate: int = 1, log: bool = True, checkpoint_dir=None,
        checkpoint_every: int | None = None, penalty=None) -> list[dict]:
    """Train in place with AdamW, linear warmup then decay, clipping; returns one record per epoch, each
    with the epoch's mean training loss, its per-step losses and learning rates, and validation metrics.

    ``train_ds``: a labelled dataset (tokenized here), or a ready DataLoader of model inputs with labels
    (``lm.loader`` makes one for a causal LM).
    ``param_groups``: optimizer groups (default: ``optimizer_groups``); a group may set its own "lr".
    ``on_epoch_start(epoch)``: called before each epoch (gradual unfreezing uses it).
    ``best_dir``: save the model there (safetensors) whenever the validation ``best_metric`` improves.
    ``schedule``: a transformers scheduler name ("linear", "cosine", "constant", "constant_with_warmup"), or
    ``schedule(optimizer, warmup_steps, total_steps)`` returning a scheduler (the range test uses one).
    ``label_smoothing``: cross-entropy with smoothed targets instead of the model's own loss (classifiers).
    ``early_stopping``: an ``early_stopping.EarlyStopping``, asked after each validation whether to stop.
    ``accumulate``: micro-batches of ``batch_size`` per optimizer step (gradient accumulation).
    ``log``: a progress bar and one line per epoch (off for the many short runs of a sweep).
    ``checkpoint_dir``: write a checkpoint there at the end of each epoch (and every ``checkpoint_every``
    optimizer steps), and resume from the latest one found there: a killed run started again with the same
    arguments ends with the same weights and metrics as a run that was never interrupted (see checkpoint.py).
    ``penalty(model)``: a term added to every step's loss (``ewc.Penalty`` holds weights near their old values).
    """
    model.to(device)
    if not isinstance(train_ds, DataLoader):
        check_labels(model, train_ds)
    if eval_ds is not None:
        check_labels(model, eval_ds)
    train = train_ds if isinstance(train_ds, DataLoader) else loader(
        tokenize(train_ds, tokenizer, max_length), tokenizer, batch_size, shuffle=True, seed=seed)
    opt = torch.optim.AdamW(param_groups or optimizer_groups(model, weight_decay), lr=lr,
                            fused=torch.device(device).type in ("cpu", "cuda"))  # one kernel for all weights
    total = epochs * math.ceil(len(train) / accumulate)
    make = schedule if callable(schedule) else lambda o, w, t: get_scheduler(schedules.check(schedule), o, w, t)
    sched = make(opt, math.ceil(warmup * total), total)
    history, best = [], -math.inf
    resume = _resume(checkpoint_dir, model, opt, sched, total, early_stopping, log)
    first_epoch = 1
    if resume is not None:
        if resume["stopped"]:  # early stopping had ended this run
            return resume["history"]
        history, best = resume["history"], resume["best"]
        first_epoch = resume["epoch"] + resume["epoch_complete"]  # a finished epoch is not trained again
    # the data order's own RNG: LengthBuckets is the batch sampler, LengthGroupedSampler the sampler
    generator = getattr(train.batch_sampler, "generator", None) or getattr(train.sampler, "generator", None)
    step = resume["step"] if resume is not None else 0
    # frozen weights in bf16 for the run (autocast would cast them at every step); not when weights are
    # saved during the run or layers unfreeze
    frozen_bf16 = bf16 and on_epoch_start is None and best_dir is None and checkpoint_dir is None \
        and early_stopping is None

    with bf16_frozen_weights(model, device, enabled=frozen_bf16), fast_dropout(model, device):
        def save(epoch, done, epoch_start, losses, lrs, epoch_complete=False, stopped=False):
            state = {"step": step, "epoch": epoch, "steps_in_epoch": done, "epoch_complete": epoch_complete,
                     "stopped": stopped, "total_steps": total, "history": history, "best": best,
                     "losses": losses, "lrs": lrs, "epoch_start": epoch_start}
            extra = {}
            if early_stopping is not None:
                state["early_stopping"] = {k: v for k, v in vars(early_stopping).items() if k != "state"}
                extra = early_stopping.state or {}
            checkpoint.save(checkpoint_dir, model=model, optimizer=opt, scheduler=sched, state=state, extra=extra)

        for epoch in range(first_epoch, epochs + 1):
            if on_epoch_start is not None:
                for e in range(1 if resume is not None and epoch == first_epoch else epoch, epoch + 1):
                    on_epoch_start(e)  # a resumed run replays the earlier epochs' calls (gradual unfreezing)
            model.train()
            losses, lrs, skip = [], [], 0
            mid_epoch = resume is not None and epoch == resume["epoch"] and not resume["epoch_complete"]
            if mid_epoch:  # the same batches as before the interruption: the epoch's start states, then skip
                now = checkpoint.rng_state()
                checkpoint.set_rng_state(resume["epoch_start"]["rng"])
                checkpoint.set_generator_state(generator, resume["epoch_start"]["generator"])
                losses, lrs, skip = resume["losses"], resume["lrs"], resume["steps_in_epoch"]
            epoch_start = {"rng": checkpoint.rng_state(), "generator": checkpoint.generator_state(generator)}
            trainable = [p for p in model.parameters() if p.requires_grad]
            bar = tqdm(train, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not log)
            groups = _groups(bar, accumulate)
            for _ in range(skip):
                next(groups)
            if mid_epoch:
                checkpoint.set_rng_state(now)  # dropout continues from where the checkpoint left it
            for group in groups:
                # k micro-batches, one optimizer step; each loss weighted by its share of the examples (or of
                # the label tokens of a causal LM), so the gradient is the big batch's (see batching.py)
                counts = [batching.items(b, "tokens" if b["labels"].dim() == 2 else "examples") for b in group]
                step_loss = 0.0
                for batch, n in zip(group, counts):
                    batch = {k: v.to(device) for k, v in batch.items()}
                    with autocast(device, bf16):
                        if label_smoothing:
                            loss = F.cross_entropy(model(**batch).logits.float(), batch["labels"],
                                                   label_smoothing=label_smoothing)
                        elif batch["labels"].dim() == 2:  # a causal LM's token labels
                            loss = lm.label_loss(model, batch)
                        else:
                            loss = model(**batch).loss
                    if penalty is not None:
                        loss = loss + penalty(model)
                    (loss * (n / sum(counts))).backward()
                    step_loss += loss.item() * n / sum(counts)
                torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(step_loss)
                step += 1
                if checkpoint_dir is not None and checkpoint_every and len(losses) % checkpoint_every == 0 \
                        and len(losses) < len(train) / accumulate:
                    save(epoch, len(losses), epoch_start, losses, lrs)
            record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "step_losses": losses, "step_lrs": lrs}
            if eval_ds is not None:
                record.update({f"val_{k}": v for k, v in evaluate(model, tokenizer, eval_ds, device=device,
                                                                  batch_size=batch_size * 2,
                                                                  max_length=max_length, bf16=bf16).items()})
                if best_dir is not None and record[f"val_{best_metric}"] > best:
                    best = record[f"val_{best_metric}"]
                    model.save_pretrained(best_dir)  # safetensors
                    record["saved"] = True
            history.append(record)
            if log:
                print(", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
                                if not isinstance(v, list)))
            stop = early_stopping is not None and early_stopping.step(record, model)
            if checkpoint_dir is not None:
                save(epoch, len(losses), epoch_start, losses, lrs, epoch_complete=True, stopped=stop)
            if stop:
                if log:
                    print(f"early stopping: no improvement of {early_stopping.monitor} for {early_stopping.patience} "
                          f"epochs, best at epoch {early_stopping.best_epoch}")
                break
    return history


def _resume(checkpoint_dir, model, opt, sched, total, early_stopping, log) -> dict | None:
    """The state of the latest checkpoint in ``checkpoint_dir`` (model, optimizer, schedule and RNG restored)."""
    if checkpoint_dir is None:
        return None
    found = checkpoint.load(checkpoint_dir, model=model, optimizer=opt, scheduler=sched)
    if found is None:
        return None
    state, extra = found
    if state["total_steps"] != total:
        raise FtkitError(f"the checkpoint in {str(checkpoint_dir)!r} is from a run of {state['total_steps']} steps, "
                         f"this one has {total}: resume with the same parameters, or give a new output folder")
    if early_stopping is not None and "early_stopping" in state:
        vars(early_stopping).update(state["early_stopping"])
        early_stopping.state = extra or None
    if log:
        print(f"resumed from step {state['step']} of {total} (epoch {state['epoch']}) in {checkpoint_dir}")
    return state


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
