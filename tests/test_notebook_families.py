"""Every notebook that takes a model, run on the smoke profile with checkpoints of other families, as a user
passes their own with `-p model <folder>`: each run ends with its results, or, where the notebook needs what
the model is not (an encoder given where a causal LM is needed), with one FtkitError line before training.

A notebook's runs take 10-50 s (kernel start-up and imports are 10 s of each), 560 s for all eighteen, too
much for the quick pass, so the notebooks are cut into shares of near-equal time, at most BUDGET seconds each,
and each commit runs one share, picked by its hash: under two minutes more on the quick pass's two workers. Each run
tries one encoder and one decoder family (tests/families.py), rotated by the commit hash and the notebook's
number. ``python ci/family_matrix.py`` runs every notebook with every family."""
import pytest

import families
from ci import family_matrix, harness

NOTEBOOKS = [nb for nb in harness.notebooks() if nb.stem != harness.REPORT]
KEY = int(harness.commit() or "0", 16)
# seconds of each notebook's plan (an encoder and a decoder run), one thread, measured on the 2-core
# EPYC without bf16 units (fp32 class); faster machines take less, and the shares stay the same
SECONDS = {"00": 19, "01": 33, "02": 39, "03": 31, "04": 20, "05": 24, "06": 26, "07": 24, "08": 42, "09": 42,
           "10": 22, "11": 48, "12": 37, "13": 78, "14": 27, "15": 16, "16": 42, "17": 36}
BUDGET = 300


def shares(names, seconds=SECONDS, budget=BUDGET) -> list[list[str]]:
    """``names`` cut into as few shares as ``budget`` seconds allow, of near-equal time: the longest first,
    each into the share with the least so far."""
    cost = {name: seconds[name[:2]] for name in names}
    out = [[] for _ in range(-(-sum(cost.values()) // budget))]
    for name in sorted(names, key=lambda n: (-cost[n], n)):
        min(out, key=lambda share: sum(cost[n] for n in share)).append(name)
    return [sorted(share) for share in out]


SHARES = shares([nb.stem for nb in NOTEBOOKS])
TODAY = SHARES[KEY % len(SHARES)]


def pick(notebook) -> tuple[str, str]:
    """This commit's (encoder, decoder) families for ``notebook``."""
    n = KEY + int(notebook.stem[:2])
    return families.ENCODERS[n % len(families.ENCODERS)], families.DECODERS[n % len(families.DECODERS)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {f: str(p.resolve()) for f, p in families.build_all(tmp_path_factory.mktemp("families")).items()}


def test_every_notebook_with_a_model_is_planned():
    assert len(NOTEBOOKS) == 18 and set(family_matrix.CAUSAL_ONLY) < {nb.stem[:2] for nb in NOTEBOOKS}
    assert set(SECONDS) == {nb.stem[:2] for nb in NOTEBOOKS}
    assert sorted(sum(SHARES, [])) == [nb.stem for nb in NOTEBOOKS]  # every notebook in one share
    assert all(sum(SECONDS[n[:2]] for n in share) <= BUDGET for share in SHARES)
    assert shares(["00_a", "01_b", "02_c"], {"00": 2, "01": 2, "02": 1}, 3) == [["00_a", "02_c"], ["01_b"]]
    encoders, decoders = zip(*(pick(nb) for nb in NOTEBOOKS))
    assert set(encoders) == set(families.ENCODERS) and set(decoders) == set(families.DECODERS)


ANOTHER = pytest.mark.skip(reason=f"this commit runs share {KEY % len(SHARES) + 1} of {len(SHARES)}: "
                                  f"{', '.join(TODAY)}")


@pytest.mark.parametrize("path", [pytest.param(nb, marks=() if nb.stem in TODAY else ANOTHER) for nb in NOTEBOOKS],
                         ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_takes_other_families(path, folders, tmp_path):
    encoder, decoder = pick(path)
    for tag, params, expected in family_matrix.plan(path.stem, encoder, decoder, folders):
        _, _, text, _ = family_matrix.outcome(path, tag, params, tmp_path)
        assert not text.startswith("TRACEBACK"), f"{path.stem} with {tag}: {text}"
        if expected == "ran":
            assert text == "ran", f"{path.stem} with {tag}: {text}"
            assert (tmp_path / f"{path.stem}-{tag}" / "results.json").exists()
        else:
            assert expected in text and "not a causal LM" in text and "'model'" in text, text
