"""The notebooks as users start them: bad parameters through papermill stop before training with one line, and
every notebook runs as a reader runs it (no injected parameters), its checked cells compared by nbval."""
import os
import re
import subprocess
import sys

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from ci import harness

NOTEBOOKS = harness.notebooks()
QUICKSTART = harness.NOTEBOOKS / "00_quickstart.ipynb"


BAD_PARAMETERS = [
    ({"lr": "abc"}, "parameter 'lr' must be a number, got 'abc'"),
    ({"lr": -1}, "parameter 'lr' must be > 0"),
    ({"lora_r": 0}, "parameter 'lora_r' must be >= 1"),
    ({"epochs": 1.5}, "parameter 'epochs' must be an integer"),
    ({"seed": "one"}, "parameter 'seed' must be an integer"),
    ({"profile": "fast"}, "unknown profile 'fast': choose one of auto, cpu, gpu, smoke"),
    ({"dataset": "spam"}, "unknown dataset 'spam': choose one of bbc-news, qa, sms-spam, tweet-sentiment"),
    ({"dataset": "missing.csv"}, "data file 'missing.csv' does not exist"),
    ({"model": "no-such-model"}, "cannot load model 'no-such-model': it is not a built-in name (minilm,"),
]


# the parameters of later notebooks that the quickstart does not have
BAD_LATER = [
    ("04", {"lm_model": "no-such-lm"}, "cannot load model 'no-such-lm'"),
    ("04", {"lm_dataset": "missing.csv"}, "data file 'missing.csv' does not exist"),
    ("04", {"lm_model": "minilm"}, "model 'minilm' is an encoder, not a causal LM: this notebook needs a decoder"),
    ("00", {"lora_targets": ["q_proj"]}, "parameter 'lora_targets': 'q_proj' is no projection of BertForSequence"),
    ("05", {"num_virtual_tokens": 0}, "parameter 'num_virtual_tokens' must be >= 1"),
    ("06", {"encoder_hidden_size": "big"}, "parameter 'encoder_hidden_size' must be an integer"),
    ("07", {"lr": 0}, "parameter 'lr' must be > 0"),
    ("08", {"n_low": 5}, "parameter 'n_low' must be >= 10"),
    ("08", {"lm_model": "no-such-lm"}, "cannot load model 'no-such-lm'"),
    ("08", {"dataset": "wikipedia"}, "dataset 'wikipedia' has no labels"),
    ("09", {"rates": [1e-4, "fast"]}, "parameter 'lr' must be a number, got 'fast'"),
    ("09", {"schedules": ["step"]}, "unknown schedule 'step': choose one of constant, constant_with_warmup, cosine"),
    ("10", {"micro_batch": 5}, "effective_batch 32 is not a multiple of micro_batch 5"),
    ("11", {"patience": 0}, "parameter 'patience' must be >= 1"),
    ("11", {"label_smoothing": 1.5}, "parameter 'label_smoothing' must be >= 0 and < 1"),
    ("16", {"terms": "he-she"}, "term pair 'he-she' is not two words joined by ':'"),
    ("16", {"skew": 0.2}, "parameter 'skew' must be >= 0.5 and <= 1"),
    ("17", {"ewc_strengths": [1, "big"]}, "parameter 'ewc_strength' must be a number, got 'big'"),
    ("17", {"replay": 1.5}, "parameter 'replay' must be >= 0 and < 1"),
    ("17", {"general": "nope"}, "unknown dataset 'nope'"),
]
TRAINS = re.compile(r"train\.fit\(|classifier_run\(|trainer\.train\(")  # the cells that start training
BAD_CASES = [(QUICKSTART, p, m) for p, m in BAD_PARAMETERS] + [
    (next(nb for nb in NOTEBOOKS if nb.name.startswith(prefix)), p, m) for prefix, p, m in BAD_LATER]


@pytest.mark.parametrize("notebook,params,message", BAD_CASES, ids=[f"{nb.stem[:2]}-{p}" for nb, p, _ in BAD_CASES])
def test_bad_parameter_stops_before_training_with_one_line(notebook, params, message, tmp_path):
    params = {"profile": "smoke", **params}
    with pytest.raises(PapermillExecutionError) as info:
        harness.execute(notebook, tmp_path, params.pop("profile"), **params)
    err = info.value
    assert err.ename == "FtkitError"
    assert message in err.evalue and "\n" not in err.evalue
    assert len(err.traceback) == 1, "the reader sees one line, not a traceback"
    cells = nbformat.read(tmp_path / notebook.name, as_version=4).cells
    train_cell = next(i for i, c in enumerate(cells) if c.cell_type == "code" and TRAINS.search(c.source))
    assert err.cell_index < train_cell, "stopped before training"
    assert not (tmp_path / notebook.stem / "results.json").exists()


# nbval runs only the notebooks with a checked cell: every notebook already runs on the smoke profile through
# papermill (test_notebooks.py), which injects nothing but the profile and the output folder, so the reader's
# defaults run there too; what nbval adds is the comparison of stored outputs.
CHECKED = [nb for nb in NOTEBOOKS if "NBVAL_CHECK_OUTPUT" in nb.read_text()]


def test_nbval_reader_run(tmp_path):
    """The notebooks with checked cells as a reader runs them (no injected parameters: the profile from
    FTKIT_PROFILE, the results under runs/interactive/), the checked cells compared by nbval."""
    assert CHECKED, "no notebook has a cell marked NBVAL_CHECK_OUTPUT"
    env = {**os.environ, "FTKIT_PROFILE": "smoke", "FTKIT_RUNS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           *map(str, CHECKED)], cwd=harness.ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"\d+ passed", proc.stdout)
    assert len(list(tmp_path.glob("interactive/*/results.json"))) == len(CHECKED)
