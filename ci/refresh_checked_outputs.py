"""Store fresh outputs in the notebook cells that nbval compares (those marked ``# NBVAL_CHECK_OUTPUT``).

    python ci/refresh_checked_outputs.py notebooks/00_quickstart.ipynb

Runs the notebook as a reader would (no injected parameters) on the smoke profile, which is what the
nbval test uses, then copies the outputs of the marked cells into the source notebook and clears every
other cell's outputs and execution counts (checked cells are numbered 1, 2, ...), so git diffs show only outputs that a test checks.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill as pm

MARK = "NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(FTKIT_PROFILE="smoke", FTKIT_RUNS=tmp, HF_HUB_OFFLINE="1")
        executed = pm.execute_notebook(str(path), str(Path(tmp) / path.name), cwd=str(path.parent),
                                       kernel_name="python3", progress_bar=False)
    outputs = {c.id: c.outputs for c in executed.cells if c.cell_type == "code" and MARK in c.source}
    nb = nbformat.read(path, as_version=4)
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = outputs.get(cell.id, [])
            count += bool(cell.outputs)  # nbval skips a checked cell that has no execution count
            cell.execution_count = count if cell.outputs else None
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = cell.execution_count
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)
    return len(outputs)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"{arg}: {refresh(Path(arg))} checked cell(s) stored")
