"""The "Use it in your project" recipes, run as a reader would paste them, on a small file of their own.

Each notebook ends with a fenced Python block meant to be copied. Here it runs in a temporary folder
holding the file it names (built from SMS spam: text,label, or prompt,response for a "*chat*" file) and
the scripts the notebook writes, with the tiny stand-in model so it takes seconds.
"""
import re

import nbformat
import pytest

import ftkit
from ci import harness
from helpers import python_of

RECIPES = [(nb.stem, block) for nb in harness.notebooks()
           for cell in nbformat.read(nb, as_version=4).cells
           if cell.cell_type == "markdown" and "Use it in your project" in cell.source
           for block in re.findall(r"```python\n(.*?)```", cell.source, re.S)]


def _written_scripts(stem):
    """The scripts a notebook writes with %%writefile."""
    cells = nbformat.read(harness.NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells
    return [python_of(c.source) for c in cells if c.cell_type == "code" and python_of(c.source) != c.source]


def test_every_notebook_has_a_recipe():
    assert {stem for stem, _ in RECIPES} == {nb.stem for nb in harness.notebooks()}


@pytest.mark.parametrize("stem,code", RECIPES, ids=[stem for stem, _ in RECIPES])
def test_recipe_runs(stem, code, tmp_path, monkeypatch):
    files = set(re.findall(r'"([\w-]+\.csv)"', code))
    assert files, "the recipe should start from the reader's own file"
    texts = ftkit.load_dataset("sms-spam", max_train=40)["train"].to_pandas()
    texts["label"] = texts["label"].map({0: "ham", 1: "spam"})
    chats = texts.rename(columns={"text": "prompt", "label": "response"})  # instruction data: prompt,response
    for name in files:
        (chats if "chat" in name else texts).to_csv(tmp_path / name, index=False)
    for script in _written_scripts(stem):  # a recipe that launches the notebook's script: the reader saved it
        (tmp_path / "train.py").write_text(script)
    monkeypatch.chdir(tmp_path)
    # seconds, not minutes: the code path is the point
    code = code.replace('"minilm"', '"tiny-bert"').replace('"smollm2-135m-instruct"', '"tiny-llama"')
    exec(compile(code, f"<{stem} recipe>", "exec"), {})
