"""Data quality: repair, normalise, find duplicates and leaks, look for label noise (notebook 08).

``ftfy`` repairs what can be repaired (mojibake whose bytes survived, HTML entities, curly quotes). The tweet
corpus also carries damage ftfy cannot undo, because bytes were lost on the way: a handful of fixed byte
sequences that stand for quotes, apostrophes and ellipses (found by reading the corpus; ``TWEET_REPAIRS``),
and emoji reduced to runs of accented letters and C1 control characters, which are dropped.
"""
from __future__ import annotations

import re

import ftfy
import pandas as pd

# damaged sequence -> what it was (read off the contexts they occur in, e.g. "donÕ¢_\x8aÎ_\x86¢t")
TWEET_REPAIRS = {
    "Õ¢_\x8aÎ_\x86¢": "'", "Õ¢_\x8aÎ\x81Ð": '"', "Õ¢_\x8aÎë\x9d": '"', "Õ¢_\x8aÎë_": '"',
    "äó»": "'", "äóì": '"', "äó\x9d": '"', "äó_": "...",
}
URL = re.compile(r"(https?://|www\.)\S*")
MENTION = re.compile(r"@\w+")
C1 = re.compile(r"[\x80-\x9f]")  # C1 control characters never occur in real text
# two or more Latin-1/Latin-extended letters or typographic signs in a row: mojibake in English text
DAMAGED_RUN = re.compile(r"_*[\x80-\u02ff\u2010-\u206f\u2122]{2,}_*")
NOT_WORD = re.compile(r"[^a-z0-9]+")


def damaged(text: str) -> bool:
    """Text a reader would see as garbled: ftfy's badness heuristic, or a C1 control character."""
    return ftfy.badness.is_bad(text) or bool(C1.search(text) or DAMAGED_RUN.search(text))


def clean(text: str, repairs: dict | None = TWEET_REPAIRS) -> str:
    """Repaired and normalised text: ftfy, the corpus's own repairs, damaged tokens dropped, URLs as "http",
    user mentions as "@user" (the convention of TweetEval), whitespace collapsed."""
    for bad, good in (repairs or {}).items():
        text = text.replace(bad, good)
    text = ftfy.fix_text(C1.sub("", DAMAGED_RUN.sub(" ", text)))
    text = URL.sub("http", text)
    text = MENTION.sub("@user", text)
    return " ".join(text.split())


def key(text: str) -> str:
    """What two near-duplicates share: the cleaned text without case, punctuation, retweet marks, URLs and
    mentions ("RT @a: Great day! http://x" and "great day" have the same key)."""
    text = clean(text).lower()
    text = re.sub(r"^rt\b|@user|http", " ", text)
    return " ".join(NOT_WORD.sub(" ", text).split())


def duplicates(texts: pd.Series) -> pd.Series:
    """For each text, whether an earlier one is identical (exact duplicates)."""
    return texts.duplicated(keep="first")


def report(df: pd.DataFrame) -> dict:
    """Counts on a frame with ``text`` and ``label``: size, exact and near duplicates, damaged texts, groups of
    near-duplicates with conflicting labels (label noise: the same tweet labelled two ways)."""
    keys = df.text.map(key)
    labels_per_key = df.groupby(keys).label.nunique()
    return {"examples": len(df), "exact_duplicates": int(duplicates(df.text).sum()),
            "near_duplicates": int(keys.duplicated().sum()), "damaged": int(df.text.map(damaged).sum()),
            "empty_after_cleaning": int((keys == "").sum()),
            "conflicting_label_groups": int((labels_per_key > 1).sum())}


def deduplicate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per near-duplicate group, with the group's majority label; groups without a majority and
    texts with nothing left after cleaning are dropped."""
    df = df.assign(key=df.text.map(key))
    df = df[df.key != ""]
    votes = df.groupby(["key", "label"]).size().rename("votes").reset_index()
    top = votes.sort_values("votes", ascending=False).groupby("key")
    winners = top.head(1).set_index("key")
    runner_up = top.nth(1).set_index("key").votes.reindex(winners.index).fillna(0)
    keep = winners[winners.votes > runner_up].label
    first = df.drop_duplicates("key").set_index("key")
    return first.loc[keep.index].assign(label=keep).reset_index(drop=True)


def leaks(train: pd.DataFrame, test: pd.DataFrame) -> pd.Series:
    """For each test text, whether a near-duplicate of it is in the training data."""
    return test.text.map(key).isin(set(train.text.map(key)))
