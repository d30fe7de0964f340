"""API drift: every call the notebooks and ftkit make into transformers, peft, evaluate, trl, papermill,
accelerate and datasets, checked against the installed release with ``inspect``. The name must still exist
and every keyword we pass must still be a parameter, so an upgrade that renames or drops one
(``evaluation_strategy``, ``Trainer(tokenizer=)``, ``group_by_length`` in transformers 5) breaks this test
instead of a reader's notebook. Calls on instances (``trainer.train()``) are out of reach of a static scan;
the notebook runs cover them."""
import ast
import importlib
import inspect

import nbformat
import pytest

from ci import harness
from helpers import modules, python_of

LIBRARIES = ("transformers", "peft", "evaluate", "trl", "papermill", "accelerate", "datasets")


def sources():
    for path in modules():
        yield str(path.relative_to(harness.ROOT)), path.read_text()
    for path in harness.notebooks():
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        scripts = [c for c in code if python_of(c) != c]  # a script the notebook writes and launches
        yield path.name, "\n".join(c for c in code if c not in scripts)
        for script in scripts:
            yield f"{path.name} ({script.split()[1]})", python_of(script)


def calls(source):
    """(qualified name, keyword names, number of positional arguments) of each library call in ``source``;
    imports inside functions count too."""
    tree = ast.parse(source)
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            names.update({a.asname or a.name: a.name for a in node.names if a.name.split(".")[0] in LIBRARIES})
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.insert(0, f.attr)
                f = f.value
            if isinstance(f, ast.Name) and f.id in names:
                found.append((".".join([names[f.id], *parts]), [k.arg for k in node.keywords if k.arg],
                              sum(not isinstance(a, ast.Starred) for a in node.args)))
    return found


def resolve(qualified):
    parts = qualified.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualified)


def problems(where, name, keywords, n_positional):
    try:
        obj = resolve(name)
    except (ImportError, AttributeError) as e:
        return [f"{where}: {name} no longer exists ({e})"]
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature: existence is all we can check
        return []
    params = sig.parameters.values()
    if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return []  # a bare (*args, **kwargs) wrapper (transformers' Auto classes): nothing to compare
    if any(p.kind is p.VAR_KEYWORD for p in params):
        accepted = None  # takes **kwargs: any keyword passes here
    else:
        accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out = [f"{where}: {name}() has no parameter {k!r} any more" for k in keywords
           if accepted is not None and k not in accepted]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not any(p.kind is p.VAR_POSITIONAL for p in params) and n_positional > len(positional):
        out.append(f"{where}: {name}() takes {len(positional)} positional arguments, we pass {n_positional}")
    return out


CALLS = [(where, *call) for where, source in sources() for call in calls(source)]


def test_the_scan_sees_the_calls_that_matter():
    names = {name for _, name, _, _ in CALLS}
    for expected in ["transformers.TrainingArguments", "transformers.Trainer", "peft.LoraConfig", "peft.get_peft_model",
                     "peft.PrefixTuningConfig", "transformers.get_scheduler", "papermill.execute_notebook",
                     "transformers.AutoModelForCausalLM.from_config"]:
        assert expected in names, expected
    assert len(CALLS) > 50  # measured: 85 with transformers 5.24, peft 0.21


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_call_still_fits_the_installed_release(library):
    mine = [c for c in CALLS if c[1].split(".")[0] == library]
    if not mine:
        pytest.skip(f"nothing calls {library} yet")
    assert [p for c in mine for p in problems(*c)] == []


@pytest.mark.parametrize("snippet, words", [
    ("from transformers import TrainingArguments\nTrainingArguments('o', evaluation_strategy='epoch')",
     "no parameter 'evaluation_strategy'"),
    ("from transformers import Trainer\nTrainer(model=m, tokenizer=t)", "no parameter 'tokenizer'"),
    ("from transformers import AdamW\nAdamW(ps)", "no longer exists"),
    ("import peft\npeft.LoraConfig(rank=8)", "no parameter 'rank'"),
    ("from papermill import execute_notebook as ex\nex('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p')",
     "positional arguments"),
])
def test_known_drift_is_caught(snippet, words):
    """The breaking changes transformers 5 made (and two made up) are reported, so the check can fail."""
    found = [p for call in calls(snippet) for p in problems("snippet", *call)]
    assert any(words in p for p in found), found
