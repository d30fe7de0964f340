"""ftkit.counterfactual: swaps, pairs, flips and gaps worked out by hand, augmentation and skewed samples."""
import datasets
import numpy as np
import pytest

from ftkit import counterfactual as cf
from helpers import one_line_error

PAIRS = cf.parse_pairs("he:she, him:her, his:her, man:woman, John:Mary")


def test_swap_goes_both_ways_by_whole_word_and_keeps_capitals():
    assert cf.swap("He told HIS mom, then John met her.", PAIRS) == ("She told HER mom, then Mary met him.", 1)
    assert cf.swap("she said the woman was right", PAIRS) == ("he said the man was right", -1)
    assert cf.swap("the manager shed a tear", PAIRS) == ("the manager shed a tear", 0)  # parts of words stay


def test_pairs_put_the_he_side_first_whichever_side_the_text_has():
    left, right = cf.pairs_from_texts(["she won", "no one here", "his day"], PAIRS)
    assert left == ["he won", "his day"] and right == ["she won", "her day"]


def test_templates_fill_every_pair():
    left, right = cf.pairs_from_templates(PAIRS[:2], templates=("{person} is here.", "I saw {person}."))
    assert left == ["he is here.", "him is here.", "I saw he.", "I saw him."]
    assert right == ["she is here.", "her is here.", "I saw she.", "I saw her."]


def test_gaps_by_hand():
    # classes (negative, neutral, positive); score = P(pos) - P(neg)
    left = [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]    # scores 0.6, -0.5; predictions 2, 0
    right = [[0.5, 0.1, 0.4], [0.7, 0.2, 0.1]]   # scores -0.1, -0.6; predictions 0, 0
    out = cf.gaps(left, right, positive=2, negative=0)
    assert out["pairs"] == 2 and out["flip_rate"] == 0.5
    assert out["mean_gap"] == pytest.approx((-0.7 - 0.1) / 2) and out["mean_abs_gap"] == pytest.approx(0.4)


def test_augment_adds_one_swapped_copy_per_term_example_with_its_label():
    ds = datasets.Dataset.from_dict({"text": ["he is great", "the sky", "Mary left"], "label": [2, 1, 0]})
    out = cf.augment(ds, PAIRS)
    assert out["text"] == ["he is great", "the sky", "Mary left", "she is great", "John left"]
    assert out["label"] == [2, 1, 0, 2, 0]


def test_skewed_sample_follows_the_stereotype_at_the_asked_share():
    texts = [f"he {i}" for i in range(40)] + [f"she {i}" for i in range(40)] + [f"x {i}" for i in range(200)]
    labels = [2] * 20 + [0] * 20 + [0] * 20 + [2] * 20 + [1] * 200
    ds = datasets.Dataset.from_dict({"text": texts, "label": labels})
    out = cf.skewed(ds, PAIRS, 100, left_label=2, right_label=0, skew=0.8)
    sides = np.array([cf.swap(t, PAIRS)[1] for t in out["text"]])
    lab = np.array(out["label"])
    follow = ((sides > 0) & (lab == 2)) | ((sides < 0) & (lab == 0))
    against = ((sides > 0) & (lab == 0)) | ((sides < 0) & (lab == 2))
    assert len(out) == 100 and follow.sum() == 25 and against.sum() == 6  # a quarter follow, 25 x 0.2 / 0.8
    assert (sides == 0).sum() == 69


@pytest.mark.parametrize("bad, words", [("he-she", "two words joined by ':'"), ("", "no term pairs"),
                                        ("he:she:it", "two words"), (3, "must be a string")])
def test_bad_term_lists_get_one_line(bad, words):
    assert words in one_line_error(lambda: cf.parse_pairs(bad))


def test_no_pairs_is_a_one_line_error():
    assert "no counterfactual pairs" in one_line_error(lambda: cf.gaps([], [], 2, 0))
