"""Every notebook that takes a model, on the smoke profile, with tiny checkpoints of other families
(tests/families.py): each run either finishes with its results or stops with one FtkitError line.

    python ci/family_matrix.py                       # all notebooks x all families, 2 kernels at once
    python ci/family_matrix.py --only 05 --families gpt2 roberta

Prints a markdown table (notebook x family: "ran", or the one-line error, or "TRACEBACK <name>: ..." for
anything else) and exits non-zero on a traceback.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ci import harness  # noqa: E402

# the notebooks that take a second model, and its parameter: a decoder family goes there too
LM_PARAMETERS = {"00": "chat_model", "04": "lm_model", "08": "lm_model", "10": "lm_model", "15": "others"}
CAUSAL_ONLY = ("05", "06", "07", "12", "17")  # the notebooks that need a causal LM as `model`
REFUSED = "is an encoder ("                   # ... and what they say when given an encoder


def parameters(notebook: str, kind: str, folder: str) -> dict:
    """One family in every model parameter it can take: `model`, and for a decoder the notebook's LM parameter."""
    out = {"model": folder}
    second = LM_PARAMETERS.get(notebook[:2])
    if kind == "decoder" and second:
        out[second] = folder
    elif second == "others":
        out["others"] = "tiny-llama"  # the comparison keeps a built-in model beside the family's
    return out


def plan(notebook: str, encoder: str, decoder: str, folders: dict) -> list[tuple[str, dict, str]]:
    """The fewest runs that give ``notebook`` one encoder and one decoder family: (tag, parameters, what to
    expect: "ran" or the start of the error). A notebook with a second model parameter takes the encoder as
    `model` and the decoder there, in one run; one that needs a causal LM runs the decoder and refuses the encoder."""
    prefix = notebook[:2]
    if prefix in LM_PARAMETERS:
        return [(f"{encoder}+{decoder}", {"model": folders[encoder], LM_PARAMETERS[prefix]: folders[decoder]}, "ran")]
    runs = [(decoder, {"model": folders[decoder]}, "ran")]
    return runs + [(encoder, {"model": folders[encoder]}, REFUSED if prefix in CAUSAL_ONLY else "ran")]


def outcome(nb: Path, tag: str, params: dict, run_dir: Path) -> tuple[str, str, str, float]:
    """(notebook, tag, "ran" | the error line | "TRACEBACK ...", seconds) of one smoke run with ``params``."""
    from papermill.exceptions import PapermillExecutionError
    start = time.perf_counter()
    try:
        harness.execute(nb, run_dir, "smoke", tag=f"-{tag}", threads=1, **params)
        text = "ran"
    except PapermillExecutionError as e:
        one_line = e.ename == "FtkitError" and len(e.traceback) == 1 and "\n" not in e.evalue
        first = (str(e.evalue).splitlines() or [""])[0][:160]
        text = e.evalue if one_line else f"TRACEBACK {e.ename}: {first}"
    except Exception as e:  # noqa: BLE001 - a kernel that died, a results.json never written: report, go on
        text = f"TRACEBACK {type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
    return nb.stem, tag, text, time.perf_counter() - start


def main(argv=None) -> int:
    import families
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="notebook prefixes (default: every one that takes a model)")
    parser.add_argument("--families", nargs="*", default=list(families.FAMILIES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--root", default=None, help="where the checkpoints are built (default: a temporary folder)")
    args = parser.parse_args(argv)
    root = Path(args.root or tempfile.mkdtemp(prefix="ftkit-families-"))
    folders = {f: str(families.build(f, root).resolve()) for f in args.families}
    notebooks = [nb for nb in harness.notebooks(args.only) if nb.stem != harness.REPORT]
    run_dir = root / "runs"
    jobs = [(nb, f, parameters(nb.stem, families.FAMILIES[f][0], folders[f]), run_dir)
            for nb in notebooks for f in args.families]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(outcome, *zip(*jobs)))
    table = {(nb, f): text for nb, f, text, _ in results}
    print("| notebook | " + " | ".join(args.families) + " |")
    print("|---" * (len(args.families) + 1) + "|")
    for nb in notebooks:
        print(f"| {nb.stem} | " + " | ".join(table[nb.stem, f] for f in args.families) + " |")
    seconds = {nb: sum(s for name, _, _, s in results if name == nb.stem) for nb in notebooks}
    print(f"\n{len(results)} runs, {sum(seconds.values()):.0f} s of kernel time; per notebook: "
          + ", ".join(f"{nb.stem[:2]} {s:.0f} s" for nb, s in seconds.items()))
    return int(any(text.startswith("TRACEBACK") for text in table.values()))


if __name__ == "__main__":
    sys.exit(main())
