"""The notebooks as regression tests: layout, smoke runs, cpu-profile expectations, the comparison report.

The smoke runs and the smoke report share one folder, so they run in one process: `make test` runs the quick
tests under pytest-xdist with ``--dist loadfile`` (a file's tests stay on one worker, in order). Bad parameters
and the reader's run are in test_notebook_inputs.py."""
import ast
import json
import os
import re
import time
import tomllib

import nbformat
import pandas as pd
import pytest

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_smoke(path, run_dirs):
    result = run_in(run_dirs["smoke"], path, "smoke")
    assert RESULT_KEYS <= set(result)
    assert result["profile"] == "smoke" and result["notebook"] == path.stem
    assert (run_dirs["smoke"] / path.name).exists(), "the executed notebook is kept"
    assert harness.check(result, harness.expectations(path.stem, "smoke")) == []


MARGIN = 1.25  # a notebook starts only if this many times its estimated seconds fit in what is left
CLASS = harness.machine_class()
ESTIMATES = harness.cpu_estimates(CLASS)  # tests/cpu_seconds.toml, for this class of machine


@pytest.fixture(scope="session")
def cpu_budget(request):
    """The cpu pass's time budget (``--cpu-budget``; none: every notebook runs), counted from
    ``FTKIT_BUDGET_START`` (epoch seconds: .ci/run sets it when CI starts, so a slow install or quick pass
    leaves less for the notebooks) or else from the first cpu notebook; which notebooks were skipped (and
    why) and how long each that ran took (``harness.CPU_PASS``, which the end of the pass prints)."""
    start = os.environ.get("FTKIT_BUDGET_START")
    return {"seconds": request.config.getoption("--cpu-budget"), "start": float(start) if start else None,
            "skipped": harness.CPU_PASS["skipped"], "ran": harness.CPU_PASS["ran"]}


def within_budget(path, budget, estimates=ESTIMATES):
    """Skip ``path``'s cpu run, naming it, unless it is expected to end inside the budget (its estimate for
    this machine class, times MARGIN); a later, shorter notebook may still fit. The report needs every run,
    so it skips once any notebook did."""
    if budget["seconds"] is None:
        return
    budget["start"] = budget["start"] or time.time()
    spent = time.time() - budget["start"]
    if path.stem == harness.REPORT:
        if budget["skipped"]:
            pytest.skip(f"the report needs every notebook's cpu run; skipped for time: {', '.join(budget['skipped'])}")
    elif spent + MARGIN * estimates[path.stem] > budget["seconds"]:
        budget["skipped"][path.stem] = f"about {estimates[path.stem]:.0f} s, {budget['seconds'] - spent:.0f} s left"
        pytest.skip(f"cpu budget of {budget['seconds']:.0f} s: {path.stem} (about {estimates[path.stem]:.0f} s on "
                    f"{CLASS}) would not end in time, {spent:.0f} s spent: not started")


def test_every_notebook_has_a_measured_cpu_time():
    tables = tomllib.loads(harness.CPU_SECONDS.read_text())
    wanted = {nb.stem for nb in NOTEBOOKS} - {harness.REPORT}
    assert set(tables) <= set(harness.CLASSES)
    assert set().union(*tables.values()) == wanted  # each on some class at least
    assert all(isinstance(s, int) and s > 0 for t in tables.values() for s in t.values())
    assert set(ESTIMATES) == wanted


def test_estimates_per_machine_class():
    assert harness.machine_class("flags : fpu avx2 avx512f") == "fp32"
    assert harness.machine_class("flags : avx2 avx512_bf16") == "avx512_bf16"
    assert harness.machine_class("flags : avx512_bf16 amx_bf16 amx_tile") == "amx"
    tables = {"fp32": {"a": 100, "b": 300, "c": 200}, "avx512_bf16": {"a": 50, "b": 100}}
    est = harness.cpu_estimates("avx512_bf16", tables, scale=1.0)
    assert est == {"a": 50, "b": 100, "c": 200 * (0.5 + 1 / 3) / 2}  # c: the median ratio of a and b
    assert harness.cpu_estimates("amx", tables, scale=1.0) == est  # no amx table: the nearest slower one
    assert harness.cpu_estimates("fp32", tables, scale=2.5) == {"a": 250, "b": 750, "c": 500}


def test_the_plan_names_what_cannot_fit_and_the_report_says_what_ran():
    run, skipped = harness.plan(["a", "b", "c"], {"a": 100, "b": 300, "c": 50}, left=300, margin=1.25)
    assert (run, skipped) == (["a", "c"], ["b"])  # after a, 200 s left: b needs 375, c 62.5
    text = harness.pass_report({"a": 110.0, "c": 45.0}, {"b": "about 300 s, 200 s left"},
                               {"a": 100, "b": 300, "c": 50}, "avx512_bf16")
    assert text.splitlines()[0] == "cpu pass (avx512_bf16): 2 of 3 notebooks ran; skipped: b (about 300 s, 200 s left)"
    assert "| a | 100 | 110 | +10% |" in text and "| c | 50 | 45 | -10% |" in text
    assert "| **all that ran** | 150 | 155 | +3% |" in text


def test_a_cpu_notebook_starts_only_if_it_fits_and_the_report_only_after_all():
    within_budget(QUICKSTART, {"seconds": None, "start": None, "skipped": {}})  # no budget: everything runs
    long, short = harness.NOTEBOOKS / "03_adapters.ipynb", harness.NOTEBOOKS / "13_scaling_out.ipynb"
    estimates = harness.cpu_estimates("fp32", scale=1.0)
    need = MARGIN * estimates[long.stem]
    assert MARGIN * estimates[short.stem] < need - 60
    budget = {"seconds": 5000.0, "start": time.time() - (5000 - need - 30), "skipped": {}}
    within_budget(long, budget, estimates)                                # 30 s to spare: it starts
    budget["start"] -= 60                                                 # 30 s short: it does not
    with pytest.raises(pytest.skip.Exception, match="03_adapters .* not started"):
        within_budget(long, budget, estimates)
    within_budget(short, budget, estimates)                               # a shorter one still fits
    with pytest.raises(pytest.skip.Exception, match="skipped for time: 03_adapters"):
        within_budget(harness.NOTEBOOKS / f"{harness.REPORT}.ipynb", budget, estimates)


def test_the_budgeted_cpu_order_rotates_with_the_commit_and_keeps_every_notebook():
    names = ["00_a", "01_b", "02_c", "03_d"]
    assert harness.rotated(names, "6") == ["02_c", "03_d", "00_a", "01_b"]  # 6 % 4 = 2
    assert harness.rotated(names, "") == names                               # outside git: in order
    assert sorted(harness.rotated(names, harness.commit() or "0")) == names


@pytest.mark.cpu_profile
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cpu_profile_expectations(path, run_dirs, cpu_budget):
    within_budget(path, cpu_budget)
    checks = harness.expectations(path.stem, "cpu")
    assert checks, f"tests/expectations.toml has no cpu checks for {path.stem}"
    start = time.time()
    try:
        result = run_in(run_dirs["cpu"], path, "cpu")
    finally:
        cpu_budget["ran"][path.stem] = time.time() - start
    assert result["profile"] == "cpu"
    assert harness.check(result, checks) == []


@pytest.mark.parametrize("profile", ["smoke", pytest.param("cpu", marks=pytest.mark.cpu_profile)])
def test_report_covers_every_notebook(profile, run_dirs, cpu_budget):
    """The comparison report of a run names every other notebook of the run, draws each one's loss curve,
    and its plots are real images."""
    if profile == "cpu":
        within_budget(harness.NOTEBOOKS / f"{harness.REPORT}.ipynb", cpu_budget)
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
