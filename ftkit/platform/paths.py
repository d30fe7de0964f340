"""Where things are on disk: an installed package's folder (the built-in models and data ship inside PyPI
packages) and the folder runs are written to."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import FtkitError


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (some carry heavy imports)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FtkitError(f"package {package!r} is not installed: run 'make install' (or pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0])


def checkout() -> Path | None:
    """The source checkout ftkit was installed from (editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else None


def runs_root() -> Path:
    """``FTKIT_RUNS`` if set, else ``runs/`` in the source checkout ftkit was installed from, else ./runs."""
    if os.environ.get("FTKIT_RUNS"):
        return Path(os.environ["FTKIT_RUNS"])
    root = checkout()
    return root / "runs" if root is not None else Path.cwd() / "runs"
