"""Execute the notebooks with papermill and write the summary: what `make run` and the CI runners call.

    python ci/run_notebooks.py                      # every notebook, profile auto (gpu if CUDA, else cpu)
    python ci/run_notebooks.py --profile smoke      # seconds per notebook, tiny models
    python ci/run_notebooks.py --profile smoke --jobs 2  # two kernels at once, a core each
    python ci/run_notebooks.py --only 00 --check    # one notebook, then check tests/expectations.toml
    python ci/run_notebooks.py -p seed 1 -p lr 2e-4 # any notebook parameter
    python ci/run_notebooks.py --seeds 0 1 2        # every notebook three times: the report's mean ± sd

Writes runs/<time>-<profile>/: the executed notebooks, each notebook's results.json, the same notebooks as
HTML pages under html/ (the comparison report among them), summary.md and summary.csv; points runs/latest
at it. Exits non-zero if a notebook fails or a check does not hold.
"""
from __future__ import annotations

import argparse
import ast
import functools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ci import harness  # noqa: E402


def parse_value(text: str):
    """Like papermill's -p: numbers and booleans become Python values, the rest stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_one(nb: Path, seed, run_dir: Path, profile: str, params: dict, check: bool, multi: bool, threads=None):
    """One notebook run: (its results.json or None, the lines saying what failed)."""
    tag = f"-seed{seed}" if multi and seed is not None else ""
    name = nb.stem + tag
    start = time.perf_counter()
    print(f"[{name}] profile={profile} ...", flush=True)
    try:
        result = harness.execute(nb, run_dir, profile, tag=tag, threads=threads,
                                 **{**params, **({} if seed is None else {"seed": seed})})
    except Exception as e:  # papermill's error already names the cell; keep going with the rest
        print(f"[{name}] FAILED after {time.perf_counter() - start:.0f} s", flush=True)
        return None, [f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[-1]}"]
    finally:
        if (run_dir / f"{name}.ipynb").exists():  # failed ones too: the page shows where it stopped
            harness.render_html(run_dir / f"{name}.ipynb", run_dir / "html")
    problems = harness.check(result, harness.expectations(nb.stem, profile)) if check else []
    print(f"[{name}] done in {time.perf_counter() - start:.0f} s"
          + (f", {len(problems)} check(s) failed" if problems else ""), flush=True)
    return result, [f"{name}: {p}" for p in problems]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default)")
    ap.add_argument("--only", action="append", help="notebook name prefix, e.g. 00 (repeatable)")
    ap.add_argument("--out", default=str(harness.ROOT / "runs"), help="folder for runs (default runs/)")
    ap.add_argument("--check", action="store_true", help="check tests/expectations.toml for the profile")
    ap.add_argument("--seeds", nargs="+", type=int, help="run each notebook once per seed (the report runs once)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks run at once, the cores shared between them (the report runs last); "
                         "it pays on the smoke profile; cpu notebooks run faster one at a time on all cores")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a notebook parameter")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        print(f"error: --jobs must be 1 or more, got {args.jobs}", file=sys.stderr)
        return 2

    from ftkit.platform.errors import FtkitError
    from ftkit.platform.profiles import get_profile
    try:
        profile = get_profile(args.profile).name
    except FtkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    nbs = harness.notebooks(args.only)
    if not nbs:
        print(f"error: no notebook matches {args.only}", file=sys.stderr)
        return 2
    out = Path(args.out)
    run_dir = out / f"{datetime.now():%Y%m%d-%H%M%S}-{profile}"
    params = {name: parse_value(value) for name, value in args.p}

    seeds = args.seeds or [None]
    runs = [(nb, seed) for nb in nbs for seed in (seeds if nb.stem != harness.REPORT else [None])]
    report = [r for r in runs if r[0].stem == harness.REPORT]  # last: it reads the others' results
    others = [r for r in runs if r not in report]
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None  # each kernel a share
    one = functools.partial(run_one, run_dir=run_dir, profile=profile, params=params, check=args.check,
                            multi=len(seeds) > 1, threads=threads)
    if args.jobs > 1 and others:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(one, *zip(*others)))
    else:
        done = [one(nb, seed) for nb, seed in others]
    done += [one(nb, seed) for nb, seed in report]
    results = [r for r, _ in done if r is not None]
    failed = [line for _, lines in done for line in lines]

    if results:
        print(harness.write_summary(harness.summary_rows(results), run_dir))
        latest = out / "latest"
        if latest.is_symlink() or not latest.exists():
            tmp = out / f".latest-{os.getpid()}"
            tmp.symlink_to(run_dir.name)
            os.replace(tmp, latest)
        print(f"\nwritten to {run_dir} (runs/latest points there)")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
