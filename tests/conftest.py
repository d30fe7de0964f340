"""Test-wide set-up: offline, with a network guard in this process and every process it starts."""
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARD_DIR = Path(__file__).resolve().parent / "netguard"
# one log for the whole run: pytest-xdist workers (make test runs the quick tests on two) inherit the
# controller's, so its pytest_sessionfinish sees their attempts too
NET_LOG = Path(os.environ["FTKIT_NET_LOG"]) if os.environ.get("PYTEST_XDIST_WORKER") \
    else Path(tempfile.mkdtemp(prefix="ftkit-net-")) / "attempts.log"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["FTKIT_NET_LOG"] = str(NET_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.pop("FTKIT_PROFILE", None)  # a profile left in the shell must not change what the tests run
sys.path.insert(0, str(ROOT))          # `from ci import harness`

_spec = importlib.util.spec_from_file_location("ftkit_netguard", GUARD_DIR / "sitecustomize.py")
_guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard)
_guard.install()


def pytest_sessionfinish(session, exitstatus):
    attempts = NET_LOG.read_text().strip() if NET_LOG.exists() else ""
    if attempts:
        print(f"\nFAILED: code tried to reach the network during the tests:\n{attempts}", file=sys.stderr)
        session.exitstatus = 1


# Under pytest-xdist (make test: --dist loadfile) the files that take minutes start first, so that the other
# worker works through the short ones meanwhile instead of waiting at the end.
LONG_FIRST = ("test_notebook_inputs.py", "test_notebooks.py", "test_benchmarks.py")


def pytest_addoption(parser):
    parser.addoption("--cpu-budget", type=float, default=None, metavar="SECONDS",
                     help="start a cpu-profile notebook only if its time in tests/cpu_seconds.toml (with a margin) ends "
                          "within this many seconds of FTKIT_BUDGET_START (epoch seconds) or the first cpu notebook; "
                          "the rest skip, named, and their order rotates with the commit (make test sets it under CI=true)")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
    if config.getoption("--cpu-budget") is not None:
        # Under a time budget the cpu notebooks run in an order rotated by the commit, so that successive
        # commits check different notebooks first and, over a few commits, all of them; the report stays last.
        from ci import harness

        cpu = [i for i, item in enumerate(items) if item.originalname == "test_cpu_profile_expectations"
               and item.callspec.id != harness.REPORT]
        by_id = {items[i].callspec.id: items[i] for i in cpu}
        for i, name in zip(cpu, harness.rotated(sorted(by_id), harness.commit())):
            items[i] = by_id[name]


def _cpu_pass_items(items):
    from ci import harness

    return [i for i in items if i.originalname == "test_cpu_profile_expectations" and i.callspec.id != harness.REPORT]


def pytest_report_collectionfinish(config, start_path, items):
    """Under a budget, the planned cpu pass before it starts: what fits and, loudly, what will not."""
    budget = config.getoption("--cpu-budget")
    cpu = _cpu_pass_items(items)
    if budget is None or not cpu:
        return []
    import time

    from ci import harness

    cls = harness.machine_class()
    estimates = harness.cpu_estimates(cls)
    start = float(os.environ.get("FTKIT_BUDGET_START") or time.time())
    left = budget - (time.time() - start)
    names = [i.callspec.id for i in cpu]
    run, skipped = harness.plan(names, estimates, left, margin=1.25)
    lines = [f"cpu pass on {cls}: {len(names)} notebooks, about {sum(estimates[n] for n in names):.0f} s "
             f"estimated, {left:.0f} s of the {budget:.0f} s budget left"]
    if skipped:
        lines += ["!" * 100, f"THE PLANNED CPU PASS DOES NOT FIT: {len(skipped)} notebooks are expected to skip: "
                  f"{', '.join(skipped)}", "!" * 100]
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The coverage line and estimated-against-actual seconds, at the end of a run that had cpu notebooks."""
    from ci import harness

    if not (harness.CPU_PASS["ran"] or harness.CPU_PASS["skipped"]):
        return
    cls = harness.machine_class()
    terminalreporter.write_sep("=", "cpu notebooks: what this run checked")
    for line in harness.pass_report(harness.CPU_PASS["ran"], harness.CPU_PASS["skipped"],
                                    harness.cpu_estimates(cls), cls).splitlines():
        terminalreporter.write_line(line)
