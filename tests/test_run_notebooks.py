"""ci/run_notebooks.py, the command `make run` calls: notebooks two at a time, the report after them."""
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = [sys.executable, str(ROOT / "ci" / "run_notebooks.py")]


def test_two_jobs_run_every_notebook_and_the_report_last(tmp_path):
    proc = subprocess.run([*SCRIPT, "--profile", "smoke", "--only", "14", "--only", "15", "--only", "99",
                           "--jobs", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = (tmp_path / "latest").resolve()
    rows = list(csv.DictReader((run_dir / "summary.csv").open()))
    assert [r["notebook"] for r in rows] == ["14_evaluation", "15_model_size", "99_comparison_report"]
    report = json.loads((run_dir / "99_comparison_report" / "results.json").read_text())
    assert report["metrics"]["notebooks_reported"] == 2  # it ran after both, and found both
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert lines[-1].startswith("[99_comparison_report] done")
    for nb in ("14_evaluation", "15_model_size"):
        assert (run_dir / "html" / f"{nb}.html").stat().st_size > 0


def test_jobs_below_one_is_a_one_line_error(tmp_path):
    proc = subprocess.run([*SCRIPT, "--profile", "smoke", "--jobs", "0", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --jobs must be 1 or more, got 0"
    assert not any(tmp_path.iterdir())  # nothing written
