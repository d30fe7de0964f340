"""ftkit: the plumbing of the fine-tuning cookbook, so the notebooks can stay short. Three layers, each in
its own folder, each importing only from the ones below it (``tests/test_layers.py`` checks):

- ``ftkit.platform``: errors, profiles, runtime (device, precision, seeds, memory), cache, paths, params,
  checkpoint (atomic checkpoints, exact resume);
- ``ftkit.engine``: data, sources, models, layout (layers, embeddings, head and projections of any family),
  metrics, losses, train (the loop: ``fit``), generate (decoding), lm (a labelled task for a causal LM),
  buckets, packing, dropout, schedules, experiment, sweep, report;
- ``ftkit.lessons``: one module per technique a notebook teaches (adapters, freezing, soft_prompt, sft,
  export, ewc, ...).

Every module is also reachable by its own name, ``ftkit.train`` or ``from ftkit import lm, sft``, whatever
its layer; ``ftkit.MODULES`` says where each lives.
"""
import importlib

__version__ = "0.1.0"

LAYERS = ("platform", "engine", "lessons")  # bottom to top
MODULES = {
    "platform": ("cache", "checkpoint", "errors", "params", "paths", "profiles", "runtime"),
    "engine": ("buckets", "data", "dropout", "experiment", "generate", "layout", "lm", "losses", "metrics",
               "models", "packing", "report", "schedules", "sources", "sweep", "train"),
    "lessons": ("adapters", "augment", "baselines", "batching", "calibration", "counterfactual",
                "early_stopping", "ewc", "export", "freezing", "launch", "lora", "methods", "quality", "sft",
                "soft_prompt"),
}
_LAYER_OF = {name: layer for layer, names in MODULES.items() for name in names}

# Imported on first use (PEP 562), so ``import ftkit`` costs nothing until a name is used: the notebook
# runner and the comparison report need none of torch's model stack, and every notebook kernel pays for
# only what it touches.
_NAMES = {"describe_dataset": ("data", "describe"), "load_dataset": ("data", "load_dataset"),
          "FtkitError": ("errors", "FtkitError"), "Experiment": ("experiment", "Experiment"),
          "chat": ("generate", "chat"), "classification_metrics": ("metrics", "classification_metrics"),
          "count_params": ("models", "count_params"), "load_causal_lm": ("models", "load_causal_lm"),
          "load_classifier": ("models", "load_classifier"), "load_tokenizer": ("models", "load_tokenizer"),
          "get_profile": ("profiles", "get_profile")}
__all__ = sorted(_NAMES)


def _module(name: str):
    return importlib.import_module(f".{_LAYER_OF[name]}.{name}", __name__)


def __getattr__(name):
    if name in _NAMES:
        module, attr = _NAMES[name]
        value = getattr(_module(module), attr)
    elif name in _LAYER_OF:
        value = _module(name)
    elif name in LAYERS:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'ftkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_NAMES, *_LAYER_OF])
