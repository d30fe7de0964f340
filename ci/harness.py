"""The notebook harness shared by `make run`, the tests and the CI runners.

Each notebook runs in a fresh kernel through papermill, with its ``parameters`` cell overridden
(profile, output_dir, and anything else given), from the ``notebooks/`` folder as its working directory,
exactly as a reader would run it in JupyterLab. It ends by writing ``<output_dir>/results.json``; the
summary table and the expectation checks are built from those files.
"""
from __future__ import annotations

import json
import os
import tomllib
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTATIONS = ROOT / "tests" / "expectations.toml"
REPORT = "99_comparison_report"  # the last notebook: it reads the others' results instead of training
SUMMARY_COLUMNS = ("notebook", "model", "dataset", "key_metric", "value", "trainable_params", "trainable_%",
                   "train_seconds", "seconds", "peak_mb")


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, in order; ``only`` keeps those whose name starts with one of its items."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return [nb for nb in found if not only or any(nb.name.startswith(o) for o in only)]


@contextmanager
def _env(**changes):
    # The kernel inherits our environment; FTKIT_PROFILE would override the profile we pass.
    def apply(values):
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    old = {k: os.environ.get(k) for k in changes}
    apply(changes)
    try:
        yield
    finally:
        apply(old)


def execute(nb: Path, run_dir: Path, profile: str, tag: str = "", threads: int | None = None, **parameters) -> dict:
    """Run one notebook into ``run_dir`` and return its results.json (papermill raises on a failed cell).
    ``tag`` names a variant of the run (``-seed1``): run_dir/<notebook><tag>/ and <notebook><tag>.ipynb.
    ``threads``: the kernel's torch threads (default: torch's own choice, one per core).

    The kernel is stopped at once when the last cell returns, not asked to exit: every file a notebook writes
    is closed by then, and a kernel holding torch took 1.3 s more per notebook to tear itself down."""
    import papermill as pm

    out_dir = run_dir / f"{nb.stem}{tag}"
    run_dir.mkdir(parents=True, exist_ok=True)
    threads = {"OMP_NUM_THREADS": str(threads)} if threads else {}
    with _env(FTKIT_PROFILE=None, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **threads):
        pm.execute_notebook(str(nb), str(run_dir / f"{nb.stem}{tag}.ipynb"), cwd=str(NOTEBOOKS),
                            kernel_name="python3",
                            parameters={"profile": profile, "output_dir": str(out_dir.resolve()), **parameters},
                            progress_bar=False, shutdown_kernel="immediate",
                            start_timeout=180)  # papermill's 60 s ran out once on a loaded 2-core machine
    return json.loads((out_dir / "results.json").read_text())


def render_html(executed: Path, folder: Path) -> Path:
    """An executed notebook as a standalone HTML page (plots embedded), to browse without Jupyter."""
    from nbconvert import HTMLExporter

    folder.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter(template_name="lab").from_filename(str(executed))
    page = folder / f"{executed.stem}.html"
    page.write_text(body, encoding="utf-8")
    return page


def summary_rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        key = r["key_metric"]
        rows.append({"notebook": r["notebook"], "model": r["model"], "dataset": r["dataset"], "key_metric": key,
                     "value": round(float(r["metrics"][key]), 4), "trainable_params": r["trainable_params"],
                     "trainable_%": (round(100 * r["trainable_params"] / r["total_params"], 3)
                                     if r.get("total_params") else None),
                     "train_seconds": r.get("train_seconds"), "seconds": round(r["wall_seconds"], 1),
                     "peak_mb": r.get("peak_memory_mb")})
    return rows


def write_summary(rows: list[dict], run_dir: Path) -> str:
    """``summary.csv`` and ``summary.md`` in ``run_dir``; returns the markdown table."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    df.to_csv(run_dir / "summary.csv", index=False)
    table = df.to_markdown(index=False)
    (run_dir / "summary.md").write_text(table + "\n")
    return table


def expectations(notebook: str, profile: str) -> dict:
    """The checks of tests/expectations.toml for one notebook and profile ({} if none)."""
    table = tomllib.loads(EXPECTATIONS.read_text())
    return table.get(notebook, {}).get(profile, {})


def lookup(result: dict, dotted: str):
    value = result
    for part in dotted.split("."):
        value = value[part]
    return value


def check(result: dict, checks: dict) -> list[str]:
    """Failures of ``checks`` ({"metrics.f1": {"min": 0.9}, "trainable_params": {"eq": 74498}}) on a result."""
    failures = []
    for key, rule in checks.items():
        try:
            value = lookup(result, key)
        except (KeyError, TypeError):
            failures.append(f"{key}: missing from results.json")
            continue
        if "eq" in rule and value != rule["eq"]:
            failures.append(f"{key} = {value!r}, expected exactly {rule['eq']!r}")
        if "min" in rule and not value >= rule["min"]:
            failures.append(f"{key} = {value!r}, expected >= {rule['min']}")
        if "max" in rule and not value <= rule["max"]:
            failures.append(f"{key} = {value!r}, expected <= {rule['max']}")
    return failures


def rotated(names: list[str], key: str) -> list[str]:
    """``names`` rotated to start at position ``int(key, 16) % len(names)``: with the commit hash as ``key``,
    a time-budgeted cpu pass (`make test` under CI) checks a different notebook first on each commit, and
    the same order again on a re-run of the same commit."""
    start = int(key, 16) % len(names) if names and key else 0
    return names[start:] + names[:start]


def commit() -> str:
    """The checked-out commit's hash, or "" outside a git checkout."""
    import subprocess

    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


# ---------------------------------------------------------------- time estimates for the cpu pass

CPU_SECONDS = ROOT / "tests" / "cpu_seconds.toml"
CLASSES = ("fp32", "avx512_bf16", "amx")  # slowest first
CPU_PASS = {"ran": {}, "skipped": {}}  # what the cpu pass of this process ran (seconds) and skipped (why)


def machine_class(cpuinfo: str | None = None) -> str:
    """The class of this CPU for the time estimates: "amx", "avx512_bf16" or "fp32" (no bf16 units)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set(cpuinfo.split())
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "fp32"


def cpu_estimates(cls: str, tables: dict | None = None, scale: float | None = None) -> dict[str, float]:
    """Estimated seconds per notebook on a machine of class ``cls``: its own measured time where there is one;
    else another class's time times the median ratio of the notebooks measured on both; a class with no table
    takes the nearest slower class's. ``scale`` (default: FTKIT_CPU_SCALE, else 1) multiplies them all."""
    import statistics

    tables = tables if tables is not None else tomllib.loads(CPU_SECONDS.read_text())
    scale = scale if scale is not None else float(os.environ.get("FTKIT_CPU_SCALE") or 1.0)
    order = list(CLASSES)
    own = next(c for c in reversed(order[:order.index(cls) + 1]) if c in tables)  # nearest measured, not faster
    mine, out = tables[own], {}
    for name in sorted({n for t in tables.values() for n in t}):
        if name in mine:
            out[name] = mine[name]
            continue
        other = next(c for c in tables if name in tables[c])
        both = [n for n in mine if n in tables[other]]
        out[name] = tables[other][name] * statistics.median(mine[n] / tables[other][n] for n in both)
    return {name: seconds * scale for name, seconds in out.items()}


def plan(names: list[str], estimates: dict, left: float, margin: float) -> tuple[list[str], list[str]]:
    """(run, skipped) if each notebook in turn starts only when ``margin`` x its estimate fits in what is
    left and takes its estimate: the pass ``within_budget`` will make if the estimates hold."""
    run, skipped = [], []
    for name in names:
        if margin * estimates[name] <= left:
            run.append(name)
            left -= estimates[name]
        else:
            skipped.append(name)
    return run, skipped


def pass_report(ran: dict, skipped: dict, estimates: dict, cls: str) -> str:
    """The coverage line and the estimated-against-actual table at the end of a cpu pass."""
    total = len(ran) + len(skipped)
    lines = [f"cpu pass ({cls}): {len(ran)} of {total} notebooks ran"
             + (f"; skipped: {', '.join(f'{n} ({why})' for n, why in skipped.items())}" if skipped else
                "; none skipped")]
    if ran:
        lines += ["", "| notebook | estimated s | actual s | error |", "|---|---:|---:|---:|"]
        for name, actual in ran.items():
            est = estimates.get(name)
            error = f"{actual / est - 1:+.0%}" if est else "-"
            lines.append(f"| {name} | {est:.0f} | {actual:.0f} | {error} |" if est else
                         f"| {name} | - | {actual:.0f} | - |")
        est_total = sum(estimates.get(n, 0) for n in ran)
        lines.append(f"| **all that ran** | {est_total:.0f} | {sum(ran.values()):.0f} | "
                     f"{sum(ran.values()) / est_total - 1:+.0%} |" if est_total else "")
    return "\n".join(lines)
