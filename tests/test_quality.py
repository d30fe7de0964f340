"""Data quality and augmentation (notebook 08): repairs, keys, duplicates, leakage, rewording helpers."""
import datasets
import pandas as pd
import pytest
import torch

import ftkit
from ftkit import augment, data, quality


def test_clean_repairs_normalises_and_drops_damage():
    assert quality.clean("I donÕ¢_\x8aÎ_\x86¢t  know &amp; care") == "I don't know & care"
    assert quality.clean("Õ¢_\x8aÎ\x81Ð@Techmeme: cars http://t.co/x") == '"@user: cars http'
    assert quality.clean("love it _ôÖ©_ôÖ© www.example.com\n") == "love it http"
    assert quality.clean("Caf\x99 ok") == "Caf ok"  # a C1 control character is dropped


def test_damage_detector():
    assert quality.damaged("I donÕ¢_\x8aÎ_\x86¢t know")
    assert quality.damaged("itâ€™s")            # classic UTF-8 read as cp1252, ftfy's own detector
    assert not quality.damaged("Plain text, café and 😀 are fine")


def test_key_ignores_case_punctuation_retweets_urls_and_mentions():
    assert quality.key("RT @a: Great day!! http://t.co/x") == quality.key("great  day") == "great day"
    assert quality.key("Great day") != quality.key("Great night")


def frame(rows):
    return pd.DataFrame(rows, columns=["text", "label"])


def test_report_counts():
    df = frame([("Good day", 1), ("Good day", 1), ("good day!", 0), ("Bad day", 0), ("sad Õ¢_\x8aÎ_\x86¢", 0)])
    assert quality.report(df) == {"examples": 5, "exact_duplicates": 1, "near_duplicates": 2, "damaged": 1,
                                  "empty_after_cleaning": 0, "conflicting_label_groups": 1}


def test_deduplicate_keeps_the_majority_label_and_drops_ties():
    df = frame([("Good day", 1), ("good day!", 1), ("GOOD DAY", 0), ("meh", 0), ("Meh.", 2), ("ok", 1), ("!!!", 0)])
    out = quality.deduplicate(df)
    assert out.to_dict("records") == [{"text": "Good day", "label": 1}, {"text": "ok", "label": 1}]


def test_leaks_finds_near_duplicates_of_test_texts_in_train():
    train = frame([("Great day http://x", 1), ("bad", 0)])
    test = frame([("great day", 1), ("fine", 1)])
    assert quality.leaks(train, test).tolist() == [True, False]


def test_raw_tweet_corpus_counts():
    raw, _, _ = data.raw_frame("tweet-sentiment")
    assert quality.report(raw) == {"examples": 38158, "exact_duplicates": 915, "near_duplicates": 3477,
                                   "damaged": 4912, "empty_after_cleaning": 0, "conflicting_label_groups": 341}


def test_from_frame_splits_a_cleaned_frame():
    df = frame([(f"text {i}", i % 2) for i in range(100)])
    ds = data.from_frame(df, ("a", "b"), max_train=20)
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [20, 10, 10]
    assert ds["train"].features["label"].names == ["a", "b"]


# ---------------------------------------------------------------- augmentation

TABLE = {"happy": ["glad", "joyful"], "terrible": ["awful"], "movie": ["film"]}


def test_synonyms_swap_only_replaceable_words():
    texts = ["Happy with this movie, not terrible at all #movie @happy"]
    out = augment.synonyms(texts, p=1.0, seed=0, table=TABLE)[0]
    assert out.split()[0] in ("Glad", "Joyful") and "film," in out and "awful" in out
    assert out.endswith("not awful at all #movie @happy")  # negation, hashtag and mention kept
    assert augment.synonyms(texts, p=0.0, table=TABLE) == texts


def test_synonyms_are_seeded():
    texts = ["happy happy happy happy happy"]
    assert augment.synonyms(texts, p=0.5, seed=1, table=TABLE) == augment.synonyms(texts, p=0.5, seed=1, table=TABLE)


def test_the_moby_thesaurus_loads_mutual_synonyms():
    table = augment.thesaurus()
    assert len(table) > 10000
    assert "glad" in table["happy"] and all("happy" in table[w] for w in table["happy"])


def test_extend_appends_reworded_copies_with_labels():
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
    out = augment.extend(ds, ["A", "B"])
    assert out["text"] == ["a", "b", "A", "B"] and out["label"] == [0, 1, 0, 1]


def test_back_translation_plumbing_with_tiny_marian():
    there = ftkit.models.load_seq2seq("tiny-marian")
    texts = ["a short one", "a much longer sentence than the first one", "mid length text"]
    out = augment.back_translate(texts, there, there, device=torch.device("cpu"), max_new_tokens=8)
    assert len(out) == 3 and all(isinstance(t, str) for t in out)


def test_seq2seq_refuses_a_classifier_name():
    with pytest.raises(ftkit.FtkitError, match="'minilm' is not a translation model"):
        ftkit.models.load_seq2seq("minilm")


def test_paraphrase_returns_one_text_per_input():
    model, tok = ftkit.load_causal_lm("tiny-llama")
    texts = ["great game tonight", "worst flight ever"]
    out = augment.paraphrase(model, tok, texts, device=torch.device("cpu"), max_new_tokens=6)
    assert len(out) == 2 and all(isinstance(t, str) and t for t in out)


class _Vectors(torch.nn.Module):
    """A stand-in model whose input embeddings are given vectors, with a vocabulary to match."""

    def __init__(self, words, vectors):
        super().__init__()
        self.emb = torch.nn.Embedding.from_pretrained(torch.tensor(vectors, dtype=torch.float))
        self.vocab = {w: i for i, w in enumerate(words)}

    def get_input_embeddings(self):
        return self.emb

    def get_vocab(self):
        return self.vocab


def test_rank_keeps_the_closest_synonyms_in_embedding_space():
    words = ["happy", "glad", "pleased", "addled", "sad"]
    vecs = [[1, 0], [0.9, 0.1], [0.8, 0.3], [0, 1], [-1, 0]]
    net = _Vectors(words, vecs)
    table = {"happy": ["addled", "glad", "pleased", "unknownword"], "sad": ["happy"]}
    assert augment.rank(table, net, net, top=2, min_cos=0.4) == {"happy": ["glad", "pleased"]}
    assert augment.rank(table, net, net, top=1, min_cos=0.4) == {"happy": ["glad"]}
