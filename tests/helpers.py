"""Helpers shared by the test modules."""
from pathlib import Path

import pytest

from ftkit import FtkitError


def python_of(cell_source: str) -> str:
    """The Python in a notebook code cell: for a ``%%writefile`` cell, the script it writes (notebook 13
    launches one), which is code users run too."""
    if cell_source.startswith("%%writefile "):
        return cell_source.partition("\n")[2]
    return cell_source


def one_line_error(call) -> str:
    """Run ``call()``, expect an FtkitError, check its message is one line, and return the message."""
    with pytest.raises(FtkitError) as excinfo:
        call()
    message = str(excinfo.value)
    assert "\n" not in message and message.strip(), f"not a one-line message: {message!r}"
    return message


def write(tmp_path, name, content) -> str:
    """A user data file; ``content`` is text (written as UTF-8) or raw bytes."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def csv_rows(n, labels=("neg", "pos"), sep=","):
    return "".join(f"message number {i}{sep}{labels[i % len(labels)]}\n" for i in range(n))


def modules() -> list[Path]:
    """The Python files users run besides the notebooks: ftkit (metric modules included) and ci."""
    root = Path(__file__).resolve().parent.parent
    return sorted([*root.glob("ftkit/**/*.py"), *root.glob("ci/*.py")])
