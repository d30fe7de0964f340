"""The parameter-efficient methods by name, checked against the model before anything trains.

peft builds each method from its config class; this module maps the cookbook's names to them, picks the task
type from the model, and refuses what peft would only refuse later: prefix tuning on a sequence classifier
fails at the first forward pass ("Model does not support past key values"), deep inside peft.

    net = methods.wrap(model, "lora", r=8, lora_alpha=16, target_modules=["query", "value"])
"""
from __future__ import annotations

import dataclasses

from peft import (LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, TaskType,
                  get_peft_model)

from ..platform.errors import FtkitError, one_of

METHODS = {"lora": LoraConfig, "prefix-tuning": PrefixTuningConfig, "p-tuning": PromptEncoderConfig,
           "prompt-tuning": PromptTuningConfig}


def task_type(model) -> TaskType:
    """SEQ_CLS for a model with a classification head, CAUSAL_LM for a language model."""
    architectures = " ".join(getattr(model.config, "architectures", None) or [type(model).__name__])
    return TaskType.SEQ_CLS if "SequenceClassification" in architectures else TaskType.CAUSAL_LM


def config(method: str, model, **options):
    """The peft config of ``method`` for ``model``, or a one-line error naming what is wrong."""
    if method not in METHODS:
        raise one_of("method", method, METHODS)
    task = task_type(model)
    if method == "prefix-tuning" and task == TaskType.SEQ_CLS:
        raise FtkitError(f"method 'prefix-tuning' needs a causal LM, and {type(model).__name__} is a sequence "
                         "classifier (peft fails with 'Model does not support past key values'): use 'lora' or "
                         "'prompt-tuning' here, or prefix tuning on a model such as 'smollm2-135m-instruct'")
    cls = METHODS[method]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise FtkitError(f"method {method!r} has no option {', '.join(map(repr, unknown))}: see "
                         f"peft.{cls.__name__} for its options")
    return cls(task_type=task, **options)


def wrap(model, method: str, **options):
    """``model`` with ``method``'s trainable parameters added (peft's ``get_peft_model``)."""
    return get_peft_model(model, config(method, model, **options))
