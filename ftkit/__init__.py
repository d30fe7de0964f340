"""ftkit: the plumbing of the fine-tuning cookbook, so the notebooks can stay short.

One module, one job: ``profiles`` (smoke/cpu/gpu), ``models`` and ``data`` (offline registries),
``metrics`` (local evaluate modules), ``train`` (the training recipe), ``generate`` (chat),
``lm`` (a labelled task for a causal LM), ``lora`` (LoRA counts and checks), ``soft_prompt`` (prompt tuning
written out), ``adapters``, ``freezing`` and ``baselines`` (the techniques of notebooks 02-03),
``quality`` and ``augment`` (data cleaning and augmentation), ``schedules`` (learning-rate schedules, the range
test), ``batching`` (exact gradient accumulation, batch costs), ``early_stopping``, ``sweep`` (runs over seeds),
``checkpoint`` (atomic checkpoints, exact resume), ``methods`` (PEFT methods by name),
``experiment`` (a notebook run and its results.json), ``params`` (checked parameters),
``runtime`` (device, precision, seeds, memory), ``cache`` (converted models), ``report`` (every
notebook's results compared, with plots).
"""
import importlib

__version__ = "0.1.0"

# Imported on first use (PEP 562), so ``import ftkit`` costs nothing until a name is used: the notebook
# runner and the comparison report need none of torch's model stack, and every notebook kernel pays for
# only what it touches. ``ftkit.<module>`` works after a bare ``import ftkit`` too.
_NAMES = {"describe_dataset": ("data", "describe"), "load_dataset": ("data", "load_dataset"),
          "FtkitError": ("errors", "FtkitError"), "Experiment": ("experiment", "Experiment"),
          "chat": ("generate", "chat"), "classification_metrics": ("metrics", "classification_metrics"),
          "count_params": ("models", "count_params"), "load_causal_lm": ("models", "load_causal_lm"),
          "load_classifier": ("models", "load_classifier"), "load_tokenizer": ("models", "load_tokenizer"),
          "get_profile": ("profiles", "get_profile")}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        module, attr = _NAMES[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
    elif not name.startswith("_"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'ftkit' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'ftkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_NAMES])
