"""Every notebook that takes a model, run on the smoke profile with checkpoints of other families, as a user
passes their own with `-p model <folder>`: each run ends with its results, or, where the notebook needs what
the model is not (an encoder given where a causal LM is needed), with one FtkitError line before training.

Each commit tries one encoder and one decoder family per notebook (tests/families.py), rotated by the commit
hash and by the notebook's number, so that successive commits go through all eight families;
``python ci/family_matrix.py`` runs the whole matrix."""
import pytest

import families
from ci import family_matrix, harness

NOTEBOOKS = [nb for nb in harness.notebooks() if nb.stem != harness.REPORT]
KEY = int(harness.commit() or "0", 16)


def pick(notebook) -> tuple[str, str]:
    """This commit's (encoder, decoder) families for ``notebook``."""
    n = KEY + int(notebook.stem[:2])
    return families.ENCODERS[n % len(families.ENCODERS)], families.DECODERS[n % len(families.DECODERS)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {f: str(p.resolve()) for f, p in families.build_all(tmp_path_factory.mktemp("families")).items()}


def test_every_notebook_with_a_model_is_planned():
    assert len(NOTEBOOKS) == 18 and set(family_matrix.CAUSAL_ONLY) < {nb.stem[:2] for nb in NOTEBOOKS}
    encoders, decoders = zip(*(pick(nb) for nb in NOTEBOOKS))
    assert set(encoders) == set(families.ENCODERS) and set(decoders) == set(families.DECODERS)  # all, each commit


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
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
