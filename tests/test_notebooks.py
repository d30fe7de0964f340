"""The notebooks as regression tests: layout, smoke runs, cpu-profile expectations, bad parameters, nbval."""
import ast
import json
import os
import re
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from papermill.exceptions import PapermillExecutionError

from ci import harness

NOTEBOOKS = harness.notebooks()
IDS = [nb.stem for nb in NOTEBOOKS]
REQUIRED_PARAMETERS = {"profile", "model", "dataset", "seed", "output_dir"}
RESULT_KEYS = {"notebook", "profile", "model", "dataset", "seed", "metrics", "key_metric", "trainable_params",
               "total_params", "train_seconds", "peak_memory_mb", "device", "versions"}
QUICKSTART = harness.NOTEBOOKS / "00_quickstart.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_there_are_notebooks():
    assert QUICKSTART in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_layout(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    names = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    required = REQUIRED_PARAMETERS - ({"model", "dataset"} if path.stem == harness.REPORT else set())
    assert required <= names, f"parameters cell lacks {required - names}"
    assert any("import ftkit" in c.source for c in code)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for cell in code:
        checked = "NBVAL_CHECK_OUTPUT" in cell.source
        assert (cell.execution_count is None) == (not checked), "only checked cells keep execution counts"
        assert checked or not cell.outputs, f"stored outputs in an unchecked cell: {cell.source[:60]!r}"
        assert not checked or cell.outputs, f"checked cell without stored output: {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebooks_render_on_github(path):
    """GitHub renders a notebook from its JSON alone: stored widget views without the widget state show
    "widget state missing", and stray editor metadata is noise in every diff."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, f"notebook metadata: {sorted(nb.metadata)}"
    for cell in nb.cells:
        assert set(cell.metadata) <= {"tags"}, f"cell metadata {sorted(cell.metadata)}: {cell.source[:60]!r}"
        for output in cell.get("outputs", []):
            assert WIDGET_MIME not in output.get("data", {}), f"stored widget output: {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_number_parameter_is_checked(path):
    """The rule for every notebook: a number in the parameters cell has a rule in ftkit.params and reaches
    Experiment (or params.check), so a wrong value from papermill stops the first cell with one line."""
    from ftkit import params
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    tagged = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    rest = "\n".join(c.source for c in cells if c is not tagged)
    for node in ast.parse(tagged.source).body:
        value = ast.literal_eval(node.value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            name = node.targets[0].id
            assert name in params.RULES, f"parameter {name!r} has no rule in ftkit.params.RULES"
            assert f"{name}={name}" in rest or f'check("{name}"' in rest, f"{name!r} is never checked"


def _code_windows(path, size=3):
    """Runs of ``size`` consecutive substantive code lines of a notebook (the parameters cell, which
    every notebook shares by design, left out)."""
    lines = [line.strip() for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
             for line in c.source.splitlines()]
    lines = [line for line in lines if len(line) > 25 and not line.startswith(("import ", "from ", "#"))]
    return {tuple(lines[i:i + size]) for i in range(len(lines) - size + 1)}


def test_no_code_copied_between_notebooks():
    """What two notebooks need lives in ftkit: no three substantive lines appear in two notebooks."""
    windows = {path.stem: _code_windows(path) for path in NOTEBOOKS}
    for a in windows:
        for b in windows:
            if a < b:
                assert not windows[a] & windows[b], f"{a} and {b} share code: move it into ftkit"


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory):
    """One folder per profile that every notebook of this test session runs into, as in `make run`: the
    comparison report, which runs last, reads the others' results from it."""
    return {profile: tmp_path_factory.mktemp(f"run-{profile}") for profile in ("smoke", "cpu")}


def run_in(run_dir, path, profile) -> dict:
    if path.stem == harness.REPORT:  # run alone (-k), it still needs every other notebook's results
        for nb in NOTEBOOKS:
            if nb != path and not (run_dir / nb.stem / "results.json").exists():
                harness.execute(nb, run_dir, profile)
    return harness.execute(path, run_dir, profile)


# the smoke runs and the smoke report share one folder: under pytest-xdist they stay on one worker, in order
@pytest.mark.xdist_group("smoke")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_smoke(path, run_dirs):
    result = run_in(run_dirs["smoke"], path, "smoke")
    assert RESULT_KEYS <= set(result)
    assert result["profile"] == "smoke" and result["notebook"] == path.stem
    assert (run_dirs["smoke"] / path.name).exists(), "the executed notebook is kept"
    assert harness.check(result, harness.expectations(path.stem, "smoke")) == []


@pytest.mark.cpu_profile
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cpu_profile_expectations(path, run_dirs):
    checks = harness.expectations(path.stem, "cpu")
    assert checks, f"tests/expectations.toml has no cpu checks for {path.stem}"
    result = run_in(run_dirs["cpu"], path, "cpu")
    assert result["profile"] == "cpu"
    assert harness.check(result, checks) == []


@pytest.mark.parametrize("profile", [pytest.param("smoke", marks=pytest.mark.xdist_group("smoke")),
                                     pytest.param("cpu", marks=pytest.mark.cpu_profile)])
def test_report_covers_every_notebook(profile, run_dirs):
    """The comparison report of a run names every other notebook of the run, draws each one's loss curve,
    and its plots are real images."""
    out = run_dirs[profile] / harness.REPORT
    result = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() \
        else run_in(run_dirs[profile], harness.NOTEBOOKS / f"{harness.REPORT}.ipynb", profile)
    assert result["reported"] == [nb.stem for nb in NOTEBOOKS if nb.stem != harness.REPORT]
    assert result["metrics"]["curves_drawn"] == len(result["reported"])
    assert set(result["plots"]) == {"tradeoffs.png", "curves.png"}
    for name in result["plots"]:
        image = (out / name).read_bytes()
        assert image.startswith(b"\x89PNG") and len(image) > 10_000, name
    table = pd.read_csv(out / "report.csv")
    assert sorted(table["notebook"]) == result["reported"]
    assert table["mean"].notna().all() and (table["train_seconds"] >= 0).all()


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


def test_nbval_reader_run(tmp_path):
    """The notebooks as a reader runs them (no injected parameters), checked cells compared by nbval."""
    env = {**os.environ, "FTKIT_PROFILE": "smoke", "FTKIT_RUNS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           *map(str, NOTEBOOKS)], cwd=harness.ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"\d+ passed", proc.stdout)
    assert len(list(tmp_path.glob("interactive/*/results.json"))) == len(NOTEBOOKS)
