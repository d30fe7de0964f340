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
from .data import describe as describe_dataset
from .data import load_dataset
from .errors import FtkitError
from .experiment import Experiment
from .generate import chat
from .metrics import classification_metrics
from .models import count_params, load_causal_lm, load_classifier, load_tokenizer
from .profiles import get_profile

__version__ = "0.1.0"
__all__ = ["Experiment", "FtkitError", "chat", "classification_metrics", "count_params", "describe_dataset",
           "get_profile", "load_causal_lm", "load_classifier", "load_dataset", "load_tokenizer"]
