"""The cookbook as a reader meets it: the quickstart run in JupyterLab, in a real browser.

The browser test starts JupyterLab on a free loopback port with the lab settings the project ships
(ci/lab/overrides.json, which `make lab` uses too), opens a copy of notebooks/00_quickstart.ipynb in
headless Chromium (Debian's, driven by playwright; ci/install_browser.sh installs it), runs every cell on
the smoke profile and checks what a reader would see: no errors, tqdm bars drawn as widgets, the results
table and the plot. A full-page screenshot goes to runs/browser/ for a person to look at.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

from ci import harness

ROOT = harness.ROOT
QUICKSTART = harness.NOTEBOOKS / "00_quickstart.ipynb"
LAB_SETTINGS = ROOT / "ci" / "lab"
CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (CI runs as root), no GPU, none of Chromium's own calls home; shared memory in /tmp, as a
# container's /dev/shm (64 MB by default) is too small for a page as tall as the notebook.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# Loopback only: the lab has no token, and nothing else may be reached (urllib would use a proxy).
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, installed by ci/install_browser.sh when missing; a skip only where it cannot be."""
    if not CHROMIUM.exists():
        done = subprocess.run(["bash", str(ROOT / "ci" / "install_browser.sh")],
                              capture_output=True, text=True)
        if done.returncode or not CHROMIUM.exists():
            reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"Chromium cannot be installed on this machine (ci/install_browser.sh: {reason[0]})")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop the lab and everything it started. Kernels run in sessions of their own (jupyter_client
    starts them so), so killing the lab's process group alone could leave them behind."""
    family = [proc, *psutil.Process(proc.pid).children(recursive=True)] if proc.poll() is None else [proc]
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the lab shuts its kernels down on SIGTERM
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for p in family[1:]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a copy of the quickstart (so autosave can never write into the checkout), on the
    smoke profile, with results under tmp_path/runs and the lab's log in tmp_path/lab.log. Yields its URL."""
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(QUICKSTART, work)
    # A config folder of its own: the user's ~/.jupyter (a password, saved settings) must not change
    # the test. The one user setting here attaches every cell to the page ("none"; the default skips
    # rendering cells out of view), so the page and the screenshot hold the whole notebook.
    config = tmp_path / "jupyter"
    tracker = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = {**os.environ, "FTKIT_PROFILE": "smoke", "FTKIT_RUNS": str(tmp_path / "runs"),
           "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={work}", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--LabApp.app_settings_dir={LAB_SETTINGS}",
           "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: run the cells, read the outputs
    if os.getuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"JupyterLab exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}"
            try:
                LOCAL.open(f"{url}/api/status", timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        _stop(proc)


# Installed before the cells run: ftkit's training bars use leave=False and are gone when training ends,
# so the page records every progress bar it ever draws (the widget element, with its row's text).
WATCH_PROGRESS_BARS = """() => {
    const bars = new Map();
    window.progressBars = () => [...bars.values()];
    new MutationObserver(() => {
        for (const bar of document.querySelectorAll('.jp-OutputArea-output .widget-hprogress')) {
            const row = bar.closest('.widget-hbox') || bar;
            bars.set(row, row.innerText);
        }
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
NOTEBOOK_OPEN = """(name) => {
    const panel = window.jupyterapp?.shell.currentWidget;
    return panel?.context?.path === name && panel.sessionContext.session?.kernel?.status === 'idle';
}"""
# 'Run All' resolves when the kernel has answered every cell (or refused the rest after an error).
RUN_ALL = """() => {
    window.runAll = 'running';
    window.jupyterapp.commands.execute('notebook:run-all-cells')
        .then(ok => { window.runAll = ok ? 'ok' : 'failed'; }, e => { window.runAll = 'error: ' + e; });
}"""
RUN_DONE = """() => window.runAll !== 'running'
    && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"""
NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.content.model.toJSON()"
# JupyterLab scrolls inside the page: a window as tall as the notebook makes the screenshot show it all.
# The file browser is folded away so the notebook gets the width.
FIT_NOTEBOOK = """() => {
    window.jupyterapp.shell.collapseLeft();
    const scroller = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
    scroller.scrollTop = 0;
    return scroller.scrollHeight + window.innerHeight - scroller.clientHeight;
}"""


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_quickstart_in_jupyterlab(chromium, lab, tmp_path):  # chromium first: no lab started to skip
    from playwright.sync_api import expect, sync_playwright

    url = lab
    net_log = Path(os.environ["FTKIT_NET_LOG"])  # the lab and its kernel run under tests/netguard
    net_before = net_log.read_text() if net_log.exists() else ""
    name = QUICKSTART.name

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requested, blocked = [], []
            page.on("request", lambda r: requested.append(r.url))

            def only_loopback(route):
                if route.request.url.startswith(url):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()
            page.route("**/*", only_loopback)

            page.goto(f"{url}/lab/tree/{name}")
            page.wait_for_function(NOTEBOOK_OPEN, arg=name, timeout=120_000)
            page.evaluate(WATCH_PROGRESS_BARS)
            page.evaluate(RUN_ALL)
            page.wait_for_function(RUN_DONE, timeout=420_000, polling=500)
            ran = page.evaluate("() => window.runAll")
            nb = nbformat.from_dict(page.evaluate(NOTEBOOK_JSON))
            bars = [" ".join(text.split()) for text in page.evaluate("() => window.progressBars()")]

            page.set_viewport_size({"width": 1400, "height": min(page.evaluate(FIT_NOTEBOOK), 16000)})
            page.wait_for_timeout(500)  # one layout pass at the new size
            shot = ROOT / "runs" / "browser" / name.replace(".ipynb", ".png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            shutil.copy(shot, tmp_path / shot.name)

            # Errors, read from the notebook model rather than the page: JupyterLab draws an exception
            # and a cell's ordinary stderr (warnings, which some cells print) alike, with the mime type
            # application/vnd.jupyter.stderr. An exception is an output of type "error"; a traceback
            # printed to stderr (an exception caught and logged) counts as one too.
            code = [c for c in nb.cells if c.cell_type == "code"]
            errors = [o for c in code for o in c.outputs if o.output_type == "error"]
            errors += [o for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"
                       and "Traceback (most recent call last)" in o.text]
            assert not errors, "\n".join(o.get("ename", "") + " " + o.get("evalue", o.get("text", ""))
                                         for o in errors)
            assert ran == "ok", ran
            # One fresh kernel, each cell once, top to bottom.
            assert [c.execution_count for c in code] == list(range(1, len(code) + 1))

            # tqdm.auto drew the training bars as ipywidgets, not as the text fallback.
            assert any(text.startswith("epoch 1/") for text in bars), f"progress bars seen: {bars}"
            # The before/after table and the plot of the "After" cell, drawn on the page.
            table = page.locator(".jp-OutputArea-output table").filter(
                has=page.locator("th", has_text="before")).filter(has=page.locator("th", has_text="after"))
            expect(table).to_be_visible()
            plot = page.locator(".jp-OutputArea-output img").first
            expect(plot).to_be_visible()
            assert plot.evaluate("img => img.complete && img.naturalWidth > 0"), "the plot did not load"

            # The shipped settings reached the lab, which neither asked about nor fetched news.
            with LOCAL.open(f"{url}/lab/api/settings/@jupyterlab/apputils-extension:notification") as r:
                schema = json.load(r)["schema"]["properties"]
            assert schema["fetchNews"]["default"] == "false" and schema["checkForUpdates"]["default"] is False
            expect(page.get_by_text("official Jupyter news")).to_have_count(0)
            assert not [u for u in requested if "/lab/api/news" in u or "/lab/api/update" in u]
            assert not blocked, f"the page reached beyond loopback: {blocked}"
        finally:
            browser.close()

    net_after = net_log.read_text() if net_log.exists() else ""
    assert net_after == net_before, f"the lab or its kernel reached for the network:\n{net_after}"
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("results.json")]
    assert [r["profile"] for r in results] == ["smoke"], results
