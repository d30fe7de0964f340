"""Loading runs no code: safetensors weights only, ``torch.load`` only with ``weights_only=True``,
``trust_remote_code`` off unless a user passes it, and no parameter value is ever evaluated as code."""
import ast

import nbformat
import pytest
import torch

import ftkit
from ci import harness
from helpers import modules, one_line_error, python_of

ROOT = harness.ROOT


def sources():
    """(where, Python source) of every module of ftkit and ci, and every notebook code cell: the code users run.
    (The tests themselves exec the README's recipes on purpose.)"""
    for path in modules():
        yield str(path.relative_to(ROOT)), path.read_text()
    for path in harness.notebooks():
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{path.name} cell {i}", python_of(cell.source)


def unsafe_calls(where, source):
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        if name == "torch.load" and not (isinstance(keywords.get("weights_only"), ast.Constant)
                                         and keywords["weights_only"].value is True):
            problems.append(f"{where}: torch.load without weights_only=True")
        if name in ("eval", "exec", "pickle.load", "pickle.loads", "torch.jit.load"):
            problems.append(f"{where}: {name}(...) runs arbitrary code")
        remote = keywords.get("trust_remote_code")
        if remote is not None and not (isinstance(remote, ast.Constant) and remote.value is False):
            problems.append(f"{where}: trust_remote_code={ast.unparse(remote)}")
    return problems


def test_no_code_runs_unsafe_loads_or_evaluates_strings():
    checked = list(sources())
    assert len(checked) > 100  # ftkit, ci and every notebook's cells
    assert [p for where, src in checked for p in unsafe_calls(where, src)] == []


@pytest.mark.parametrize("snippet", ["torch.load(f)", "torch.load(f, weights_only=False)", "eval(lr)",
                                     "AutoModel.from_pretrained(p, trust_remote_code=True)", "pickle.load(f)"])
def test_the_scan_finds_each_unsafe_pattern(snippet):
    assert unsafe_calls("snippet", snippet)


def test_a_pickled_checkpoint_is_refused(tmp_path):
    """A folder with only a pickled ``pytorch_model.bin`` is not loaded (unpickling can run code)."""
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=2)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    message = one_line_error(lambda: ftkit.load_classifier(str(tmp_path), num_labels=2))
    assert f"cannot load model {str(tmp_path)!r}" in message and "safetensors" in message


def test_remote_code_stays_off_by_default(monkeypatch):
    seen = {}

    class Loader:
        @staticmethod
        def from_pretrained(path, **kwargs):
            seen.update(kwargs)
            return "model"
    assert ftkit.models._from_pretrained(Loader, "minilm") == "model"
    assert seen["trust_remote_code"] is False
    ftkit.models._from_pretrained(Loader, "minilm", trust_remote_code=True)  # a user's explicit choice wins
    assert seen["trust_remote_code"] is True
