"""Training losses, one place for the engine and the lessons: a classifier's, a causal LM's on its labelled
tokens only, and what each averages over (the weight of a micro-batch under gradient accumulation).

``fit(loss=...)`` takes any ``loss(model, batch) -> tensor``; the defaults per task are ``for_task``'s.
"""
from __future__ import annotations

import inspect

import torch.nn.functional as F

TASKS = ("classification", "causal-lm")


def model_loss(model, batch: dict):
    """The model's own loss, ``model(**batch).loss``, with every term the model adds (AdaLoRA's orthogonality
    penalty, for one): the loss to pass as ``fit(loss=model_loss)`` for such a model."""
    return model(**batch).loss


def smoothed(label_smoothing: float):
    """A classifier's cross-entropy with smoothed targets (``label_smoothing`` of the mass spread evenly)."""
    def loss(model, batch):
        return F.cross_entropy(model(**batch).logits.float(), batch["labels"], label_smoothing=label_smoothing)
    return loss


def label_loss(model, batch: dict):
    """The causal-LM loss of ``model(**batch).loss`` (mean cross-entropy over the labelled tokens), with the
    49k-wide output layer run only at the positions whose next token is labelled.

    Labels are a few tokens at the end of each example (a label word, an answer), so this skips most of the
    output layer's work and its fp32 softmax: on notebook 17's SMS prompts (right-padded batches of 16) it
    scores 400 of 15,616 positions. The positions are counted from the end of the sequence, so a soft prompt
    put in front changes nothing. A model without transformers' ``logits_to_keep`` gets the full forward pass.
    Terms a model adds to its own loss are not here: use ``model_loss`` for such a model.
    """
    labels = batch["labels"]
    if "position_ids" in batch:  # packed rows: transformers masks per example only when it keeps no KV cache
        batch = {**batch, "use_cache": False}
    inner = lm_keeping_logits(model)
    head = inner.get_output_embeddings() if inner is not None else None
    if head is None:
        return model(**batch).loss
    # (writing this ourselves: transformers' loss needs logits at every position, and ``logits_to_keep`` keeps
    # the same positions in every row; trl's fused head does this only on a Triton GPU)
    mask = labels[:, 1:] != -100  # predicting positions: the next token is a label

    def only_labelled(module, args):  # the output layer's input, (rows, positions, hidden) -> (labelled, hidden)
        return (args[0][:, :-1][mask],)
    hook = head.register_forward_pre_hook(only_labelled)
    try:  # the last labels.shape[1] positions: the tokens, after any soft prompt in front
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}, logits_to_keep=labels.shape[1]).logits
    finally:
        hook.remove()
    return F.cross_entropy(logits.float(), labels[:, 1:][mask])


def lm_keeping_logits(model):
    """The causal LM inside ``model`` (a peft model, a ``SoftPrompt``) if it takes ``logits_to_keep``, else None."""
    while True:
        if hasattr(model, "get_base_model"):  # peft
            model = model.get_base_model()
        params = inspect.signature(model.forward).parameters
        if "logits_to_keep" in params:
            return None if getattr(getattr(model, "config", None), "is_encoder_decoder", False) else model
        inner = getattr(model, "model", None)
        if inner is None or not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return None
        model = inner  # a wrapper that passes keyword arguments on


def for_task(task: str, label_smoothing: float = 0.0):
    """The default loss of a task: a classifier's own (or smoothed) cross-entropy, a causal LM's ``label_loss``."""
    if task == "causal-lm":
        return label_loss
    return smoothed(label_smoothing) if label_smoothing else model_loss


def unit(task: str) -> str:
    """What a task's mean loss averages over: examples (classification) or label tokens (causal LM)."""
    return "tokens" if task == "causal-lm" else "examples"


def items(batch: dict, unit: str) -> int:
    """What a micro-batch's mean loss averages over: its examples, or its label tokens (after the
    one-position shift of causal LMs, and not the -100 ones)."""
    if unit == "examples":
        return len(batch["labels"])
    if unit == "tokens":
        return int((batch["labels"][:, 1:] != -100).sum())
    raise ValueError(f"unit must be 'examples' or 'tokens', got {unit!r}")
