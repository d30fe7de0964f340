"""The comparison report: every notebook's ``results.json`` in one table, and the plots that compare them.

    runs = report.load("runs/latest")           # every results.json under the folder
    table = report.table(runs)                  # one row per notebook: mean ± sd over seeds
    report.plot_tradeoffs(table, "tradeoffs.png"); report.plot_curves(runs, "curves.png")

Each notebook has its own task and key metric (the spam class's F1, macro-F1 over tweet sentiment, ...), so
a point is only comparable with the points of the same task: the plots colour points by task.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..platform.errors import FtkitError
from ..platform.paths import runs_root

COLUMNS = ["notebook", "method", "profile", "model", "dataset", "key_metric", "mean", "sd", "seeds",
           "trainable_params", "trainable_%", "train_seconds", "peak_mb", "general_ppl_change"]
PPL_CHANGE = "general_perplexity_change"  # the metric a notebook reports when it measures general-text drift


def default_folder(output_dir) -> Path:
    """The runs a report gathers when not told: the run folder it is part of (``make run`` gives every
    notebook an output_dir in one folder), else runs/latest (the newest ``make run``), else runs/interactive
    (notebooks run by hand)."""
    if output_dir:
        return Path(output_dir).parent
    root = runs_root()
    return root / "latest" if (root / "latest").exists() else root / "interactive"


def load(folder, exclude: tuple[str, ...] = ()) -> list[dict]:
    """Every finished notebook run under ``folder`` (its results.json files, any depth), except notebooks in
    ``exclude``.
    A notebook run again with the same profile, model, dataset and seed counts once: its newest run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FtkitError(f"results folder {str(folder)!r} does not exist: run the notebooks first (make run)")
    runs = [json.loads(p.read_text()) for p in sorted(folder.rglob("results.json"))]
    runs = [r for r in runs if "notebook" in r]  # not a notebook's: e.g. a script a notebook launched
    newest = {}
    for r in sorted(runs, key=lambda r: r.get("finished_at", "")):
        if r.get("notebook") not in exclude:
            newest[tuple(r.get(k) for k in ("notebook", "profile", "model", "dataset", "seed"))] = r
    runs = list(newest.values())
    if not runs:
        raise FtkitError(f"no results.json under {str(folder)!r}: run the notebooks first (make run)")
    return runs


def method_name(notebook: str) -> str:
    """'04_lora' -> 'lora', '01_full_finetuning' -> 'full finetuning'."""
    return notebook.split("_", 1)[-1].replace("_", " ")


def table(runs: list[dict]) -> pd.DataFrame:
    """One row per notebook (and profile, model, dataset): its key metric's mean, and sd over the runs' seeds
    (NaN for a single run)."""
    rows = [{"notebook": r["notebook"], "method": method_name(r["notebook"]), "profile": r.get("profile"),
             "model": r.get("model"),
             "dataset": r.get("dataset"), "key_metric": r["key_metric"],
             "value": float(r["metrics"][r["key_metric"]]),
             "trainable_params": r.get("trainable_params"), "total_params": r.get("total_params"),
             "train_seconds": r.get("train_seconds"), "peak_mb": r.get("peak_memory_mb"),
             "general_ppl_change": r["metrics"].get(PPL_CHANGE)} for r in runs]
    out = []
    keys = ["notebook", "profile", "model", "dataset", "key_metric"]
    for key, g in pd.DataFrame(rows).groupby(keys, dropna=False, sort=True):
        first = g.iloc[0]
        trainable, total = first["trainable_params"], first["total_params"]
        out.append({**dict(zip(keys, key)), "method": first["method"],
                    "mean": g["value"].mean(), "sd": g["value"].std(ddof=1), "seeds": len(g),
                    "trainable_params": trainable,
                    "trainable_%": 100 * trainable / total if pd.notna(trainable) and total else np.nan,
                    "train_seconds": g["train_seconds"].mean(), "peak_mb": g["peak_mb"].max(),
                    "general_ppl_change": g["general_ppl_change"].mean()})
    return pd.DataFrame(out, columns=COLUMNS)


def pretty(tab: pd.DataFrame) -> pd.DataFrame:
    """The table as a reader wants it: "0.712 ± 0.010 (3 seeds)", "74,498 (0.33%)", rounded times."""
    def metric(r):
        spread = f" ± {r['sd']:.3f}" if pd.notna(r["sd"]) else ""
        return f"{r['mean']:.3f}{spread}" + (f" ({r['seeds']} seeds)" if r["seeds"] > 1 else "")

    def params(r):
        if pd.isna(r["trainable_params"]):
            return ""
        share = f" ({r['trainable_%']:.3g}%)" if pd.notna(r["trainable_%"]) else ""
        return f"{int(r['trainable_params']):,}{share}"

    out = pd.DataFrame({"method": tab["method"], "model": tab["model"], "task": tab.apply(task, axis=1),
                        "key metric": tab.apply(metric, axis=1), "trainable params": tab.apply(params, axis=1),
                        "train s": tab["train_seconds"].round(0), "peak MB": tab["peak_mb"].round(0)})
    if tab["general_ppl_change"].notna().any():  # the perplexity column only where a notebook measured it
        out["general ppl change"] = tab["general_ppl_change"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}%")
    return out.set_index(tab["notebook"])


def write(tab: pd.DataFrame, folder) -> Path:
    """``report.csv`` (every column) and ``report.md`` (the pretty table) in ``folder``; returns the .md path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tab.to_csv(folder / "report.csv", index=False)
    (folder / "report.md").write_text(pretty(tab).to_markdown() + "\n")
    return folder / "report.md"


def task(row) -> str:
    return f"{row['dataset']}: {row['key_metric']}"


def plot_tradeoffs(tab: pd.DataFrame, path=None):
    """Two panels, one point per notebook: key metric against trainable parameters (log) and against train
    time (log); error bars are the sd over seeds, colours the tasks."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for (name, g), colour in zip(tab.groupby(tab.apply(task, axis=1), sort=True), plt.cm.tab10.colors):
        for ax, x in zip(axes, ["trainable_params", "train_seconds"]):
            ok = g[x].notna() & (g[x] > 0)
            ax.errorbar(g.loc[ok, x], g.loc[ok, "mean"], yerr=g.loc[ok, "sd"].fillna(0), fmt="o", capsize=3,
                        color=colour, label=name)
            for _, row in g[ok].iterrows():
                ax.annotate(row["notebook"][:2], (row[x], row["mean"]), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    for ax, label in zip(axes, ["trainable parameters", "train seconds"]):
        ax.set_xscale("log"); ax.set_xlabel(f"{label} (log)"); ax.set_ylabel("key metric"); ax.grid(alpha=0.3)
    axes[0].set_title("metric vs trainable parameters"); axes[1].set_title("metric vs training time")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the legend under the panels
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_curves(runs: list[dict], path=None, smooth: int = 10):
    """The training loss of each notebook's first tracked run (``Experiment.track``) on one axis; a moving
    average over ``smooth`` steps, since single-batch losses are noisy."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    drawn, seen = 0, set()
    for r in sorted(runs, key=lambda r: (r["notebook"], r.get("seed", 0))):
        if not r.get("curves") or r["notebook"] in seen:
            continue  # one curve per notebook: its first tracked run, lowest seed
        seen.add(r["notebook"])
        name, losses = next(iter(r["curves"].items()))
        k = max(1, min(smooth, len(losses) // 5))
        avg = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k, len(losses) + 1), avg, label=f"{r['notebook'][:2]} {name}",
                linestyle="-" if drawn < 10 else "--")  # ten colours, then dashed
        drawn += 1
    ax.set_yscale("log"); ax.set_xlabel("optimizer step"); ax.set_ylabel("training loss (log)")
    ax.set_title("training loss per technique"); ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
