"""ftkit.calibration on hand-worked examples."""
import numpy as np
import pytest

from ftkit import FtkitError, calibration

# confidences 0.9, 0.8, 0.6, 0.7 (one per bin 9, 8, 6, 7), right, wrong, right, right:
# ECE = (|1 - 0.9| + |0 - 0.8| + |1 - 0.6| + |1 - 0.7|) / 4 = 1.6 / 4 = 0.4
PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
LABELS = [0, 1, 0, 1]


def test_reliability_and_ece_by_hand():
    table = calibration.reliability(PROBS, LABELS)
    assert table.examples.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert table.accuracy.iloc[6:].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert calibration.ece(PROBS, LABELS) == pytest.approx(0.4)
    # one bin: mean confidence 0.75, accuracy 3/4
    assert calibration.ece(PROBS, LABELS, bins=1) == pytest.approx(0.0)


def test_temperature_recovers_a_known_overconfidence():
    """Labels drawn from softmax(z); a model that outputs 3z is over-confident by exactly T = 3."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20000, 3))
    labels = np.array([rng.choice(3, p=p) for p in calibration.softmax(z)])
    assert calibration.fit_temperature(3 * z, labels) == pytest.approx(3.0, rel=0.05)
    assert calibration.fit_temperature(z, labels) == pytest.approx(1.0, rel=0.05)


def test_confident_mistakes_come_most_confident_first():
    table = calibration.confident_mistakes(["a", "b", "c", "d"], [1, 0, 1, 1],
                                           np.array([[0.6, 0.4], [0.1, 0.9], [0.95, 0.05], [0.2, 0.8]]),
                                           ["neg", "pos"], k=5)
    # wrong: a (neg at 0.6), b (pos at 0.9), c (neg at 0.95); d is right
    assert table.text.tolist() == ["c", "b", "a"] and table.predicted.tolist() == ["neg", "pos", "neg"]
    assert table.confidence.tolist() == [0.95, 0.9, 0.6]


def test_mismatched_lengths_are_one_line():
    with pytest.raises(FtkitError, match="one probability row per label"):
        calibration.reliability(PROBS, [0, 1])
