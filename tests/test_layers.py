"""ftkit's three layers: platform below engine below lessons. A module imports only from its own layer or
the ones below, and no modules import each other in a circle (function-level imports count too). Each check
also runs on a small made-up package with a violation, so it is seen to fail."""
import ast
from pathlib import Path

import pytest

import ftkit

ROOT = Path(ftkit.__file__).resolve().parent
LAYERS = ftkit.LAYERS  # bottom to top


def modules(root: Path) -> dict[str, Path]:
    """Dotted name under the package (``engine.train``, ``engine.metrics``) -> file, for every module."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if len(parts) > 2:  # the evaluate metric scripts under engine/metrics/<name>/ are not ftkit modules
            continue
        out[".".join(parts)] = f
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's own modules that ``name`` imports, anywhere in its file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
            elif node.module and node.module.split(".")[0] == "ftkit":
                base = []
            else:
                continue
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target and target[0] == "ftkit":
                target = target[1:]
            for alias in node.names:  # ``from . import train`` names a module, ``from .train import fit`` not
                candidate = ".".join([*target, alias.name])
                found.add(candidate if candidate in known else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ftkit."):
                    found.add(alias.name[len("ftkit."):])
    return {m for m in found if m in known and m != name}


def graph(root: Path) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imports(name, path, set(mods)) for name, path in mods.items() if name}


def layer(name: str) -> int:
    return LAYERS.index(name.split(".")[0])


def upward(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({a.split('.')[0]}) imports {b} ({b.split('.')[0]})"
                  for a, targets in g.items() for b in targets if layer(b) > layer(a))


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_folders_are_the_layers():
    top = sorted(p.name for p in ROOT.iterdir() if p.name != "__pycache__")
    assert top == sorted(["__init__.py", *LAYERS])
    on_disk = {layer_: sorted(p.stem for p in (ROOT / layer_).iterdir()
                              if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").exists()))
               for layer_ in LAYERS}
    assert on_disk == {layer_: sorted(names) for layer_, names in ftkit.MODULES.items()}


def test_no_module_imports_from_a_higher_layer():
    g = graph(ROOT)
    assert g["engine.train"] >= {"engine.losses", "platform.checkpoint"}  # the parser sees real imports
    assert upward(g) == []


def test_no_modules_import_in_a_circle():
    assert cycles(graph(ROOT)) == []


def _fake(tmp_path, files: dict[str, str]) -> Path:
    root = tmp_path / "ftkit"
    for rel, text in {"__init__.py": "", "platform/__init__.py": "", "engine/__init__.py": "",
                      "lessons/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("code", ["from ..lessons import sft", "from ..lessons.sft import answer",
                                  "def f():\n    from ftkit.lessons import sft", "import ftkit.lessons.sft"])
def test_an_upward_import_is_caught(tmp_path, code):
    root = _fake(tmp_path, {"engine/train.py": code + "\n", "lessons/sft.py": "from ..engine import train\n"})
    g = graph(root)
    assert upward(g) == ["engine.train (engine) imports lessons.sft (lessons)"]
    assert cycles(g) == [["engine.train", "lessons.sft"]]


def test_a_circle_within_a_layer_is_caught(tmp_path):
    root = _fake(tmp_path, {"engine/lm.py": "from . import train\n", "engine/train.py": "from .lm import loss\n",
                            "engine/data.py": "from ..platform import errors\n", "platform/errors.py": ""})
    g = graph(root)
    assert upward(g) == [] and g["engine.data"] == {"platform.errors"}
    assert cycles(g) == [["engine.lm", "engine.train"]]
