"""The cookbook's evaluate metrics, shipped as local modules so nothing is fetched from the Hub.

Each metric lives in `<name>/<name>.py` next to this file; `load(name)` hands that folder to
`evaluate.load`, and `classification_metrics` is the summary the classification notebooks report.
"""

from pathlib import Path

from ...platform.errors import FtkitError, one_of

_HERE = Path(__file__).resolve().parent
AVAILABLE = tuple(sorted(d.name for d in _HERE.iterdir() if (d / f"{d.name}.py").is_file()))
_LOADED = {}


def load(name: str):
    """Return the evaluate module for a metric in AVAILABLE (loaded once, then cached)."""
    if name not in AVAILABLE:
        raise one_of("metric", name, AVAILABLE)
    if name not in _LOADED:
        import evaluate  # imported here: it is slow to import and only needed once a metric is used

        # keep_in_memory: no arrow/lock files under ~/.cache/huggingface/metrics for each compute
        _LOADED[name] = evaluate.load(str(_HERE / name), keep_in_memory=True)
    return _LOADED[name]


def classification_metrics(predictions, references, num_labels: int) -> dict:
    """Accuracy, macro F1 and F1 (positive class 1 when binary, else macro F1) as Python floats.
    A prediction outside 0..num_labels-1 counts as wrong for every class."""
    if num_labels < 2:
        raise FtkitError(f"num_labels must be at least 2, got {num_labels}")
    f1 = load("f1")
    accuracy = load("accuracy").compute(predictions=predictions, references=references)["accuracy"]
    # labels= fixed: a prediction outside 0..num_labels-1 (a generated answer off the format) is simply wrong
    macro_f1 = f1.compute(predictions=predictions, references=references, average="macro",
                          labels=list(range(num_labels)))["f1"]
    if num_labels == 2:  # F1 of class 1 alone
        binary_f1 = f1.compute(predictions=predictions, references=references, average="macro", labels=[1])["f1"]
    else:
        binary_f1 = macro_f1
    return {"accuracy": float(accuracy), "macro_f1": float(macro_f1), "f1": float(binary_f1)}


def for_trainer(num_labels: int):
    """A ``compute_metrics`` for ``transformers.Trainer`` that reports ``classification_metrics``."""
    def compute(eval_pred):
        logits, labels = eval_pred
        return classification_metrics(logits.argmax(-1).tolist(), labels.tolist(), num_labels)
    return compute
