"""Checks for notebook parameters, which arrive from papermill as whatever the user typed.

``papermill -p lr abc`` injects the string ``'abc'``; without a check the notebook would fail minutes
later inside torch. Each known parameter name has a rule; a value that breaks it gets a one-line error
naming the parameter and an example of a good value.
"""
from __future__ import annotations

from .errors import FtkitError

# name: (kind, test, what the test means, example)
RULES = {
    "seed": ("int", lambda v: v >= 0, ">= 0", "-p seed 1"),
    "lr": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p lr 2e-4"),
    "lm_lr": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p lm_lr 2e-3"),
    "prompt_lr": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p prompt_lr 3e-2"),
    "lm_epochs": ("int", lambda v: v >= 1, ">= 1", "-p lm_epochs 2"),
    "num_virtual_tokens": ("int", lambda v: v >= 1, ">= 1", "-p num_virtual_tokens 10"),
    "encoder_hidden_size": ("int", lambda v: v >= 1, ">= 1", "-p encoder_hidden_size 128"),
    "lora_lr": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p lora_lr 5e-4"),
    "processes": ("int", lambda v: v >= 1, ">= 1", "-p processes 2"),
    "full_lr": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p full_lr 5e-5"),
    "head_lr": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p head_lr 1e-3"),
    "decay": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p decay 0.8"),
    "n_small": ("int", lambda v: v >= 10, ">= 10", "-p n_small 300"),
    "bottleneck": ("int", lambda v: v >= 1, ">= 1", "-p bottleneck 64"),
    "epochs": ("int", lambda v: v >= 1, ">= 1", "-p epochs 3"),
    "batch_size": ("int", lambda v: v >= 1, ">= 1", "-p batch_size 16"),
    "max_length": ("int", lambda v: v >= 8, ">= 8", "-p max_length 128"),
    "n_train": ("int", lambda v: v >= 1, ">= 1", "-p n_train 500"),
    "lora_r": ("int", lambda v: v >= 1, ">= 1", "-p lora_r 8"),
    "lora_alpha": ("float", lambda v: v > 0, "> 0", "-p lora_alpha 16"),
    "lora_dropout": ("float", lambda v: 0 <= v < 1, ">= 0 and < 1", "-p lora_dropout 0.1"),
    "weight_decay": ("float", lambda v: v >= 0, ">= 0", "-p weight_decay 0.01"),
    "warmup": ("float", lambda v: 0 <= v < 1, ">= 0 and < 1", "-p warmup 0.1"),
    "effective_batch": ("int", lambda v: v >= 1, ">= 1", "-p effective_batch 32"),
    "micro_batch": ("int", lambda v: v >= 1, ">= 1", "-p micro_batch 8"),
    "patience": ("int", lambda v: v >= 1, ">= 1", "-p patience 2"),
    "min_delta": ("float", lambda v: v >= 0, ">= 0", "-p min_delta 0.001"),
    "dropout": ("float", lambda v: 0 <= v < 1, ">= 0 and < 1", "-p dropout 0.1"),
    "label_smoothing": ("float", lambda v: 0 <= v < 1, ">= 0 and < 1", "-p label_smoothing 0.1"),
    "n_seeds": ("int", lambda v: v >= 1, ">= 1", "-p n_seeds 3"),
    "synonym_p": ("float", lambda v: 0 < v <= 1, "> 0 and <= 1", "-p synonym_p 0.15"),
    "n_low": ("int", lambda v: v >= 10, ">= 10", "-p n_low 100"),
    "ewc_strength": ("float", lambda v: v > 0, "> 0", "-p ewc_strengths '[0.1, 1]'"),
    "replay": ("float", lambda v: 0 <= v < 1, ">= 0 and < 1", "-p replay 0.25"),
    "skew": ("float", lambda v: 0.5 <= v <= 1, ">= 0.5 and <= 1", "-p skew 0.9"),
    "max_new_tokens": ("int", lambda v: v >= 1, ">= 1", "-p max_new_tokens 32"),
}


def check(name: str, value):
    """The value, converted to its kind (an int is a fine float), or a one-line FtkitError."""
    if name not in RULES:
        return value
    kind, test, meaning, example = RULES[name]
    ok_type = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        article = "an integer" if kind == "int" else "a number"
        raise FtkitError(f"parameter {name!r} must be {article}, got {value!r} ({type(value).__name__}): "
                         f"e.g. {example}")
    value = int(value) if kind == "int" else float(value)
    if not test(value):
        raise FtkitError(f"parameter {name!r} must be {meaning}, got {value!r}: e.g. {example}")
    return value


def check_all(params: dict) -> dict:
    return {name: check(name, value) for name, value in params.items()}
