"""Elastic weight consolidation (Kirkpatrick et al., 2017): fine-tune on a new task while a quadratic
penalty holds each weight near its old value, in proportion to how much the old abilities depend on it.

    fisher = ewc.fisher_diagonal(model, general_batches)       # before fine-tuning: what general text needs
    penalty = ewc.Penalty(model, fisher, strength=1.0)          # remembers the weights as they are now
    train.fit(model, tok, task_batches, ..., penalty=penalty)   # loss + strength * sum F * (w - w_old)^2
    penalty.drift(model)                                        # sum F * (w - w_old)^2: how far it moved

The diagonal Fisher information is estimated as the mean squared gradient of the language-model loss on
general text (the "empirical Fisher"), then divided by its mean, so ``strength`` reads the same for any
model size and text. No library in this stack offers EWC for transformers models; it is written here.
"""
from __future__ import annotations

import copy

import torch

from ..platform.runtime import autocast


def fisher_diagonal(model, batches, *, device="cpu", bf16: bool = True) -> dict[str, torch.Tensor]:
    """Mean squared gradient per trainable weight over ``batches`` (each a dict of model inputs with labels),
    normalised to mean 1 over all weights."""
    model.to(device).train()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for batch in batches:
        model.zero_grad(set_to_none=True)
        with autocast(device, bf16):
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.float() ** 2
        count += 1
    model.zero_grad(set_to_none=True)
    if count == 0:
        raise ValueError("fisher_diagonal needs at least one batch of general text")
    mean = sum(f.sum() for f in fisher.values()) / sum(f.numel() for f in fisher.values()) / count
    return {n: f / count / mean for n, f in fisher.items()}


class Penalty:
    """``strength * sum F * (w - w_old)^2`` over the weights in ``fisher``, with ``w_old`` the weights at
    construction; call it on the model during training."""

    def __init__(self, model, fisher: dict[str, torch.Tensor], strength: float):
        self.strength = float(strength)
        self.fisher = fisher
        self.old = {n: p.detach().clone() for n, p in model.named_parameters() if n in fisher}

    def __call__(self, model) -> torch.Tensor:
        total = 0.0
        for n, p in model.named_parameters():
            if n in self.fisher and p.requires_grad:
                total = total + (self.fisher[n] * (p - self.old[n]) ** 2).sum()
        return self.strength * total

    @torch.no_grad()
    def drift(self, model) -> float:
        """How far ``model`` moved from the remembered weights in the Fisher's measure, ``sum F * (w - w_old)^2``
        (the penalty without ``strength``), frozen weights included. A peft LoRA model is measured on its merged
        weights, so an adapter's change counts where it lands (the model stays unmerged)."""
        if hasattr(model, "merge_and_unload"):  # peft: merge a copy, keep the adapter
            model = copy.deepcopy(model).merge_and_unload()
        params = dict(model.named_parameters())
        return float(sum((f * (params[n].float() - self.old[n].float()) ** 2).sum() for n, f in self.fisher.items()))
