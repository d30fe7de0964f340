"""Dataset registry: built-in names or the user's own file -> a ``datasets.DatasetDict``.

Every dataset gets fixed train/validation/test splits (80/10/10, stratified by label, split seed 0) that do
not depend on the training seed, so every notebook and every seed sees the same test set. A profile then
caps the split sizes with a stratified, equally fixed sample.

A path to a CSV, TSV, JSON or JSONL file works wherever a name does: columns ``text`` and ``label`` for
classification, ``prompt`` and ``response`` for instruction data, ``text`` alone for language modelling.
"""
from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
from sklearn.model_selection import train_test_split

from ..platform import cache
from . import sources
from ..platform.errors import FtkitError, one_of

datasets.disable_progress_bars()  # one bar per map() call buries the training progress in notebooks

BUILTIN = tuple(sources.SOURCES)
SPLIT_SEED = 0
MIN_EXAMPLES = 10
FILE_TYPES = (".csv", ".tsv", ".json", ".jsonl")
COLUMNS = {"classification": ("text", "label"), "instruction": ("prompt", "response"), "text": ("text",)}


def describe(name: str) -> str:
    """Source, licence and counts of a built-in dataset."""
    if name not in sources.SOURCES:
        raise one_of("dataset", name, BUILTIN)
    return sources.SOURCES[name].about


def load_dataset(name: str, *, max_train: int | None = None, max_eval: int | None = None,
                 profile=None) -> datasets.DatasetDict:
    """Splits ``train``/``validation``/``test`` of a built-in dataset or a file; caps from the profile."""
    df, task, labels = raw_frame(name)
    if profile is not None:
        max_train = max_train or profile.max_train
        max_eval = max_eval or profile.max_eval
    parts = fixed_splits(df, stratify=task == "classification", group="title" if task == "text" else None)
    return _to_dataset_dict(parts, labels, max_train, max_eval)


def raw_frame(name: str):
    """(DataFrame, task, labels) of a built-in dataset, raw, or of the user's own file."""
    if not isinstance(name, str) or not name.strip():
        raise FtkitError(f"parameter 'dataset' must be a dataset name or a file path, got {name!r}")
    if name in sources.SOURCES:
        src = sources.SOURCES[name]
        df = cache.parquet(name, src.read) if name == "wikipedia" else src.read()
        if name == "qa":
            df = df.drop_duplicates(["prompt", "response"]).reset_index(drop=True)
        return df, src.task, src.labels
    if Path(name).suffix.lower() in FILE_TYPES or Path(name).exists():
        return read_file(name)
    raise FtkitError(f"unknown dataset {name!r}: choose one of {', '.join(sorted(BUILTIN))}, or give "
                     f"the path of a {'/'.join(t[1:] for t in FILE_TYPES)} file")


def from_frame(df: pd.DataFrame, labels=(), *, max_train: int | None = None, max_eval: int | None = None):
    """Fixed train/validation/test splits of a classification frame (``text``, ``label``), e.g. after cleaning."""
    return _to_dataset_dict(fixed_splits(df, stratify=True), labels, max_train, max_eval)


def read_file(path: str):
    """(DataFrame, task, labels) from the user's own file, with one-line errors for what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise FtkitError(f"data file {path!r} does not exist: check the path (relative paths start at {Path.cwd()})")
    if p.stat().st_size == 0:
        raise FtkitError(f"data file {path!r} is empty: it needs a header and at least one row")
    try:
        if p.suffix.lower() in (".jsonl", ".json"):
            df = _read_json(p)
        else:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FtkitError(f"data file {path!r} is not UTF-8 (byte {e.start}): re-save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    except pd.errors.ParserError as e:
        raise FtkitError(f"data file {path!r} is malformed: {str(e).strip()}") from None
    if df.empty:
        raise FtkitError(f"data file {path!r} has no rows: it needs a header and at least one example")
    for task, cols in COLUMNS.items():
        if all(c in df.columns for c in cols):
            break
    else:
        raise FtkitError(f"data file {path!r} lacks a 'text' column (with 'label' for classification) or "
                         f"'prompt'/'response' columns; it has {', '.join(map(str, df.columns))}")
    df = df.dropna(subset=list(cols)).reset_index(drop=True)
    if len(df) < MIN_EXAMPLES:
        raise FtkitError(f"data file {path!r} has {len(df)} complete examples, too few to split into "
                         f"train/validation/test: give at least {MIN_EXAMPLES}")
    labels = ()
    if task == "classification":
        if df.label.dtype.kind == "f" and (df.label % 1 == 0).all():  # ints read as floats beside a blank
            df["label"] = df.label.astype(int)
        labels = tuple(sorted(df.label.unique(), key=str))
        if all(isinstance(v, int) or str(v).lstrip("-").isdigit() for v in labels):
            labels = tuple(str(v) for v in sorted(int(v) for v in labels))
            if labels != tuple(str(i) for i in range(len(labels))):
                raise FtkitError(f"data file {path!r}: integer labels must be 0..{len(labels) - 1}, got "
                                 f"{', '.join(labels)}; renumber them or use label names")
            df["label"] = df.label.astype(int)
        else:
            labels = tuple(str(v) for v in labels)
            df["label"] = df.label.astype(str).map({v: i for i, v in enumerate(labels)})
    return df, task, labels


def _read_json(p: Path) -> pd.DataFrame:
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            return pd.DataFrame(json.loads(text))
        except json.JSONDecodeError as e:
            raise pd.errors.ParserError(f"line {e.lineno} is not valid JSON ({e.msg})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise pd.errors.ParserError(f"line {n} is not valid JSON ({e.msg})") from None
    return pd.DataFrame(rows)


def fixed_splits(df: pd.DataFrame, stratify: bool, group: str | None = None, test: float = 0.1,
          validation: float = 0.1) -> dict:
    """Fixed 80/10/10 splits, independent of the training seed: stratified by ``label`` when asked, or
    keeping each value of the ``group`` column (e.g. one article's paragraphs) inside one split."""
    if len(df) < MIN_EXAMPLES:
        raise FtkitError(f"{len(df)} examples are too few to split into train/validation/test: "
                         f"give at least {MIN_EXAMPLES}")
    if group is not None and group in df:
        keys = df[group].drop_duplicates().sample(frac=1.0, random_state=SPLIT_SEED).tolist()
        n_test, n_val = max(1, round(len(keys) * test)), max(1, round(len(keys) * validation))
        where = {k: "test" if i < n_test else "validation" if i < n_test + n_val else "train"
                 for i, k in enumerate(keys)}
        return {name: df[df[group].map(where) == name] for name in ("train", "validation", "test")}
    try:
        return _split(df, stratify, test, validation)
    except ValueError:  # too few examples per class for a stratified split of this size
        return _split(df, False, test, validation)


def _split(df, stratify, test, validation) -> dict:
    strat = df.label if stratify and df.label.value_counts().min() >= 2 else None
    rest, test_df = train_test_split(df, test_size=test, random_state=SPLIT_SEED, stratify=strat)
    strat = rest.label if strat is not None else None
    train_df, val_df = train_test_split(rest, test_size=validation / (1 - test), random_state=SPLIT_SEED,
                                        stratify=strat)
    return {"train": train_df, "validation": val_df, "test": test_df}


def _cap(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    if n is None or n >= len(df):
        return df
    strat = df.label if "label" in df and df.label.value_counts().min() >= 2 else None
    try:
        df, _ = train_test_split(df, train_size=n, random_state=SPLIT_SEED, stratify=strat)
    except ValueError:  # too few per class for a stratified sample of this size
        df = df.sample(n=n, random_state=SPLIT_SEED)
    return df


def _to_dataset_dict(parts: dict, labels, max_train, max_eval) -> datasets.DatasetDict:
    out = {}
    for name, df in parts.items():
        df = _cap(df, max_train if name == "train" else max_eval).reset_index(drop=True)
        features = datasets.Features.from_arrow_schema(datasets.Dataset.from_pandas(df.head(1)).data.schema)
        if labels:
            features["label"] = datasets.ClassLabel(names=list(labels))
        out[name] = datasets.Dataset.from_pandas(df, features=features, preserve_index=False)
    return datasets.DatasetDict(out)


def map_rows(ds: datasets.Dataset, fn, **kwargs) -> datasets.Dataset:
    """``ds.map(fn, **kwargs)`` without hashing ``fn``.

    datasets names each map's result by pickling its function, and a function that holds a tokenizer pickles
    the whole vocabulary: 174 ms for each call with MiniLM's tokenizer against 9 ms for the map itself, a
    third of notebook 11's smoke run (it tokenizes for every evaluation). These datasets live in memory, so
    the name only has to be new: a random one, which is what datasets itself falls back to when it cannot
    hash a function (from its own generator, so no seed moves)."""
    return ds.map(fn, new_fingerprint=datasets.fingerprint.generate_random_fingerprint(), **kwargs)


def catalogue() -> pd.DataFrame:
    """One row per built-in dataset: task, classes and split sizes (uncapped)."""
    rows = []
    for name in BUILTIN:
        ds = load_dataset(name)
        labels = sources.SOURCES[name].labels
        rows.append({"dataset": name, "task": sources.SOURCES[name].task, "classes": len(labels) or "-",
                     **{split: len(part) for split, part in ds.items()}})
    return pd.DataFrame(rows).set_index("dataset")
