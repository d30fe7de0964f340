"""Tests for ftkit.data: the built-in datasets' fixed splits, profile caps, and the user-file path with
its one-line errors."""

import collections
import json

import datasets
import pytest

import ftkit
from ftkit import data, sources
from ftkit.platform.errors import FtkitError
from ftkit.platform.profiles import PROFILES
from helpers import csv_rows, one_line_error, write

# Measured once with ftkit.load_dataset(name), then pinned.
SIZES = {
    "sms-spam": (3888, 487, 487),
    "bbc-news": (1779, 223, 223),
    "tweet-sentiment": (30526, 3816, 3816),
    "wikipedia": (4020, 477, 512),
    "qa": (983, 123, 123),
}
LABELS = {
    "sms-spam": ["ham", "spam"],
    "bbc-news": ["business", "entertainment", "politics", "sports", "tech"],
    "tweet-sentiment": ["negative", "neutral", "positive"],
}
COLUMNS = {
    "sms-spam": ["text", "label"],
    "bbc-news": ["text", "label", "title"],
    "tweet-sentiment": ["text", "label", "confidence"],
    "wikipedia": ["text", "title"],
    "qa": ["prompt", "response", "topic"],
}
SPLITS = ["train", "validation", "test"]


@pytest.fixture(scope="module")
def loaded():
    """Each built-in dataset loaded once, uncapped."""
    return {name: ftkit.load_dataset(name) for name in data.BUILTIN}


def sizes(ds):
    return tuple(len(ds[s]) for s in SPLITS)


# ---------------------------------------------------------------- built-in datasets

def test_builtin_names():
    assert data.BUILTIN == ("sms-spam", "bbc-news", "tweet-sentiment", "wikipedia", "qa")


@pytest.mark.parametrize("name", list(SIZES))
def test_split_sizes(loaded, name):
    ds = loaded[name]
    assert list(ds) == SPLITS
    assert sizes(ds) == SIZES[name]


@pytest.mark.parametrize("name", list(COLUMNS))
def test_columns(loaded, name):
    for split in SPLITS:
        assert loaded[name][split].column_names == COLUMNS[name]


@pytest.mark.parametrize("name", list(LABELS))
def test_label_names(loaded, name):
    for split in SPLITS:
        assert loaded[name][split].features["label"].names == LABELS[name]


def test_sms_spam_counts_match_its_description(loaded):
    ds = loaded["sms-spam"]
    assert sum(len(ds[s]) for s in SPLITS) == 4862
    assert sum(sum(ds[s]["label"]) for s in SPLITS) == 642
    assert "4,862 messages, 642 spam" in ftkit.describe_dataset("sms-spam")


@pytest.mark.parametrize("name", list(LABELS))
def test_splits_are_stratified(loaded, name):
    ds = loaded[name]
    every = [label for s in SPLITS for label in ds[s]["label"]]
    whole = collections.Counter(every)
    for split in SPLITS:
        counts = collections.Counter(ds[split]["label"])
        assert set(counts) == set(range(len(LABELS[name])))
        for label in whole:
            share = counts[label] / len(ds[split])
            assert abs(share - whole[label] / len(every)) < 0.01, (split, label)


@pytest.mark.parametrize("name", ["sms-spam", "wikipedia", "qa"])
def test_splits_are_identical_across_loads(loaded, name):
    again = ftkit.load_dataset(name)
    for split in SPLITS:
        assert again[split].to_dict() == loaded[name][split].to_dict()


def test_sms_spam_splits_share_only_texts_duplicated_in_the_raw_data(loaded):
    raw = sources.sms_spam()
    duplicated = set(raw.text[raw.text.duplicated(keep=False)])
    assert len(duplicated) > 0  # the raw data really has duplicates (the data-quality notebook shows them)
    ds = loaded["sms-spam"]
    texts = {s: set(ds[s]["text"]) for s in SPLITS}
    for a, b in [("train", "test"), ("train", "validation"), ("validation", "test")]:
        shared = texts[a] & texts[b]
        assert shared <= duplicated, (a, b)
    # every raw row lands in exactly one split
    assert collections.Counter(t for s in SPLITS for t in ds[s]["text"]) == collections.Counter(raw.text)


def test_wikipedia_splits_share_no_article(loaded):
    titles = {s: set(loaded["wikipedia"][s]["title"]) for s in SPLITS}
    assert [len(titles[s]) for s in SPLITS] == [84, 11, 11]
    assert not titles["train"] & titles["test"]
    assert not titles["train"] & titles["validation"]
    assert not titles["validation"] & titles["test"]


def test_qa_pairs_are_deduplicated_and_disjoint(loaded):
    ds = loaded["qa"]
    pairs = [(p, r) for s in SPLITS for p, r in zip(ds[s]["prompt"], ds[s]["response"])]
    assert len(pairs) == len(set(pairs)) == 1229


# ---------------------------------------------------------------- caps

def test_smoke_profile_caps(monkeypatch):
    monkeypatch.delenv("FTKIT_PROFILE", raising=False)
    ds = ftkit.load_dataset("sms-spam", profile=ftkit.get_profile("smoke"))
    assert sizes(ds) == (48, 32, 32)
    # stratified caps: 13.2% spam -> 6 of 48 and 4 of 32
    assert [sum(ds[s]["label"]) for s in SPLITS] == [6, 4, 4]


def test_cpu_profile_caps():
    ds = ftkit.load_dataset("sms-spam", profile=PROFILES["cpu"])
    assert sizes(ds) == (1000, 400, 400)
    assert [sum(ds[s]["label"]) for s in SPLITS] == [132, 53, 53]


def test_cap_larger_than_split_keeps_the_split():
    ds = ftkit.load_dataset("bbc-news", profile=PROFILES["cpu"])
    assert sizes(ds) == (1000, 223, 223)


def test_explicit_caps_win_over_profile():
    ds = ftkit.load_dataset("sms-spam", max_train=100, profile=PROFILES["smoke"])
    assert sizes(ds) == (100, 32, 32)
    ds = ftkit.load_dataset("sms-spam", max_train=20, max_eval=10)
    assert sizes(ds) == (20, 10, 10)


def test_capped_sample_is_fixed_and_a_subset(loaded):
    a = ftkit.load_dataset("sms-spam", profile=PROFILES["smoke"])
    b = ftkit.load_dataset("sms-spam", profile=PROFILES["smoke"])
    full = {s: set(loaded["sms-spam"][s]["text"]) for s in SPLITS}
    for split in SPLITS:
        assert a[split]["text"] == b[split]["text"]
        assert set(a[split]["text"]) <= full[split]


def test_capped_text_dataset_keeps_articles_apart():
    ds = ftkit.load_dataset("wikipedia", profile=PROFILES["smoke"])
    assert sizes(ds) == (48, 32, 32)
    assert not set(ds["train"]["title"]) & set(ds["test"]["title"])


def test_catalogue_rows():
    table = data.catalogue()
    assert list(table.index) == list(data.BUILTIN)
    assert table["task"].to_dict() == {"sms-spam": "classification", "bbc-news": "classification",
                                       "tweet-sentiment": "classification", "wikipedia": "text",
                                       "qa": "instruction"}
    assert table["classes"].to_dict() == {"sms-spam": 2, "bbc-news": 5, "tweet-sentiment": 3,
                                          "wikipedia": "-", "qa": "-"}
    for name, (train, validation, test) in SIZES.items():
        assert (table.loc[name, "train"], table.loc[name, "validation"], table.loc[name, "test"]) == \
            (train, validation, test)


def test_describe_unknown_name():
    with pytest.raises(FtkitError) as excinfo:
        ftkit.describe_dataset("imdb")
    assert "\n" not in str(excinfo.value)
    assert all(name in str(excinfo.value) for name in data.BUILTIN)


# ---------------------------------------------------------------- user files

def check_user_file(ds, rows, label_names):
    """Every (text, label name) of the file is in exactly one split; 50 rows split 40/5/5."""
    assert sizes(ds) == (40, 5, 5)
    names = ds["train"].features["label"].names
    assert names == label_names
    got = sorted((t, names[y]) for s in SPLITS for t, y in zip(ds[s]["text"], ds[s]["label"]))
    assert got == sorted(rows)


def test_csv_with_string_labels(tmp_path):
    rows = [(f"message number {i}", "pos" if i % 2 else "neg") for i in range(50)]
    path = write(tmp_path, "mine.csv", "text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    check_user_file(ftkit.load_dataset(path), rows, ["neg", "pos"])


def test_tsv(tmp_path):
    rows = [(f"message, number {i}", ["b", "a", "c"][i % 3]) for i in range(50)]  # commas inside text
    path = write(tmp_path, "mine.tsv", "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    check_user_file(ftkit.load_dataset(path), rows, ["a", "b", "c"])


def test_jsonl(tmp_path):
    rows = [(f'message "{i}"', "spam" if i % 5 == 0 else "ham") for i in range(50)]
    lines = [json.dumps({"text": t, "label": y}) for t, y in rows]
    lines.insert(10, "")  # blank lines are skipped
    path = write(tmp_path, "mine.jsonl", "\n".join(lines) + "\n")
    check_user_file(ftkit.load_dataset(path), rows, ["ham", "spam"])


def test_json_list(tmp_path):
    rows = [(f"message {i}", "x" if i % 2 else "y") for i in range(50)]
    path = write(tmp_path, "mine.json", json.dumps([{"text": t, "label": y, "extra": i}
                                                    for i, (t, y) in enumerate(rows)], indent=1))
    ds = ftkit.load_dataset(path)
    check_user_file(ds, rows, ["x", "y"])
    assert ds["train"].column_names == ["text", "label", "extra"]


def test_integer_labels(tmp_path):
    rows = [(f"message {i}", i % 3) for i in range(50)]
    path = write(tmp_path, "ints.csv", "text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    ds = ftkit.load_dataset(path)
    assert ds["train"].features["label"].names == ["0", "1", "2"]
    got = sorted((t, y) for s in SPLITS for t, y in zip(ds[s]["text"], ds[s]["label"]))
    assert got == sorted(rows)  # ids are the integers themselves


def test_user_file_is_stratified(tmp_path):
    # 80 ham, 20 spam -> each split 20% spam
    path = write(tmp_path, "skew.csv", "text,label\n" + "".join(
        f"m{i},{'spam' if i % 5 == 0 else 'ham'}\n" for i in range(100)))
    ds = ftkit.load_dataset(path)
    assert sizes(ds) == (80, 10, 10)
    assert [sum(ds[s]["label"]) for s in SPLITS] == [16, 2, 2]


def test_rows_with_missing_values_are_dropped(tmp_path):
    path = write(tmp_path, "gaps.csv", "text,label\n" + csv_rows(50) + ",pos\nno label,\n")
    assert sum(sizes(ftkit.load_dataset(path))) == 50


def test_instruction_file(tmp_path):
    lines = [json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(20)]
    ds = ftkit.load_dataset(write(tmp_path, "chat.jsonl", "\n".join(lines)))
    assert sizes(ds) == (16, 2, 2)
    assert ds["train"].column_names == ["prompt", "response"]


def test_text_only_file(tmp_path):
    path = write(tmp_path, "corpus.csv", "text\n" + "".join(f"paragraph {i}\n" for i in range(20)))
    ds = ftkit.load_dataset(path)
    assert sizes(ds) == (16, 2, 2)
    assert ds["train"].column_names == ["text"]


def test_user_file_caps(tmp_path):
    path = write(tmp_path, "mine.csv", "text,label\n" + csv_rows(100))
    assert sizes(ftkit.load_dataset(path, profile=PROFILES["smoke"])) == (48, 10, 10)


# ---------------------------------------------------------------- bad input: one line, names file and problem


def test_twelve_examples_in_two_classes_are_enough(tmp_path):
    ds = ftkit.load_dataset(write(tmp_path, "twelve.csv", "text,label\n" + csv_rows(12)))
    assert sizes(ds) == (8, 2, 2)


def test_ten_examples_of_one_class_are_enough(tmp_path):
    ds = ftkit.load_dataset(write(tmp_path, "ten.csv", "text,label\n" + csv_rows(10, labels=("only",))))
    assert sizes(ds) == (8, 1, 1)


@pytest.mark.parametrize("name", ["imdb", "sms_spam", "SMS-SPAM", "data/mine"])
def test_unknown_dataset_name_lists_builtins(name):
    message = one_line_error(lambda: ftkit.load_dataset(name))
    assert f"unknown dataset {name!r}" in message
    assert all(builtin in message for builtin in data.BUILTIN)
    assert "csv/tsv/json/jsonl" in message


@pytest.mark.parametrize("bad", [None, "", "  ", 3])
def test_dataset_must_be_a_name(bad):
    with pytest.raises(FtkitError, match="parameter 'dataset'"):
        ftkit.load_dataset(bad)


# ---------------------------------------------------------------- bugs found while writing these tests

def test_integer_labels_with_a_missing_label(tmp_path):
    path = write(tmp_path, "holes.csv", "text,label\n" + csv_rows(20, labels=(0, 1)) + "unlabelled,\n")
    ds = ftkit.load_dataset(path)
    assert ds["train"].features["label"].names == ["0", "1"]


@pytest.mark.parametrize("n, k", [(10, 2), (21, 3), (41, 5)])
def test_small_file_with_several_classes(tmp_path, n, k):
    path = write(tmp_path, "small.csv", "text,label\n" + csv_rows(n, labels=[f"c{i}" for i in range(k)]))
    try:
        ds = ftkit.load_dataset(path)
    except FtkitError as e:  # a clear one-line error would be acceptable too
        assert "\n" not in str(e) and repr(path) in str(e)
    else:
        assert sum(sizes(ds)) == n


def test_map_rows_gives_the_rows_of_map_without_pickling_its_function():
    pickled = []

    class Spy:  # stands for a tokenizer: datasets pickles whatever the function holds to name the result
        def __reduce__(self):
            pickled.append(1)
            return (Spy, ())

    spy = Spy()
    ds = datasets.Dataset.from_dict({"text": ["a", "bb", "ccc"], "label": [0, 1, 0]})

    def lengths(batch):
        assert spy is not None
        return {"n": [len(t) for t in batch["text"]]}

    hashed = ds.map(lengths, batched=True)
    assert pickled, "datasets no longer pickles a map's function: map_rows has nothing left to save"
    pickled.clear()
    fast = data.map_rows(ds, lengths, batched=True)
    assert pickled == []
    assert fast.to_dict() == hashed.to_dict() == {"text": ["a", "bb", "ccc"], "label": [0, 1, 0], "n": [1, 2, 3]}
    assert fast._fingerprint != data.map_rows(ds, lengths, batched=True)._fingerprint  # each result a new name
