"""Chapter results: each notebook's headline numbers, saved to ``data/results`` and shown as a table.

A full-mode run writes ``data/results/<chapter>.json`` (committed; the README's table is built from
these files); a fast-mode run writes ``<chapter>.fast.json`` (git-ignored) so smoke runs never
overwrite the measured numbers. Rebuild the README table with::

    python -m course_utils.results --update-readme      # or --check to verify it is current
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import config

CHAPTERS = {
    "00": ("Setup & PyTorch primer", "00_setup_and_pytorch.ipynb"),
    "01": ("Pixels & classical CV", "01_pixels_and_classical_cv.ipynb"),
    "02": ("CNNs", "02_cnns.ipynb"),
    "03": ("Object detection", "03_detection.ipynb"),
    "04": ("Segmentation", "04_segmentation.ipynb"),
    "05": ("GANs & diffusion", "05_gans_and_diffusion.ipynb"),
    "06": ("ViT from scratch & self-supervised", "06_vit_from_scratch.ipynb"),
    "07": ("CLIP & multimodal", "07_clip_and_multimodal.ipynb"),
    "08": ("Deployment", "08_deployment.ipynb"),
    "09": ("Video, motion & 3D", "09_video_and_3d.ipynb"),
}
README_START, README_END = "<!-- results-table:start -->", "<!-- results-table:end -->"


def results_path(chapter: str, mode: str) -> Path:
    if chapter not in CHAPTERS:
        raise ValueError(f"chapter must be one of {sorted(CHAPTERS)}, got {chapter!r}")
    suffix = ".json" if mode == "full" else ".fast.json"
    return config.results_dir() / f"{chapter}{suffix}"


def record_results(chapter: str, metrics: dict[str, float], headline: str, extra_packages=()) -> dict:
    """Save the run's headline ``metrics`` with mode, device, whole-notebook seconds and versions.

    ``headline`` names the metric the README shows (it must be a key of ``metrics``).
    """
    if not metrics:
        raise ValueError("metrics must name at least one measured number")
    if headline not in metrics:
        raise ValueError(f"headline must be one of the metric names {sorted(metrics)}, got {headline!r}")
    for name, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"metric {name!r} must be a finite number, got {value!r}")
    if os.environ.get("COURSE_CHECK_FIGURES") == "1":  # set by the test suite: the chapter's figures, checked
        from .viz import FIGURE_PROBLEMS

        if FIGURE_PROBLEMS:
            raise AssertionError("figures that do not say what they show (title, axis labels):\n  "
                                 + "\n  ".join(FIGURE_PROBLEMS))
    record = {
        "chapter": chapter,
        "title": CHAPTERS.get(chapter, ("?",))[0],
        "mode": config.mode(),
        "device": config.device_description(),
        "seconds": round(config.chapter_seconds(chapter), 1),
        # COURSE_USE_CHECKPOINTS=1 in full mode: the committed checkpoints were loaded instead of training
        "checkpoints_loaded": config.mode() == "full" and config.use_checkpoints(),
        "headline": headline,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "versions": config.package_versions(("torch", "torchvision", *extra_packages)),
        "recorded": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    path = results_path(chapter, record["mode"])
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def experiment_path(chapter: str, name: str) -> Path:
    """Where a full run keeps the outcome of one of ``chapter``'s experiments (committed, like the results)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"chapter must be one of {sorted(CHAPTERS)}, got {chapter!r}")
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"name must be letters, digits and underscores, got {name!r}")
    return config.results_dir() / "experiments" / f"{chapter}_{name}.json"


def experiment(chapter: str, name: str, run: Callable[[], object], settings: object = None):
    """Run an experiment (seeds × variants, training included) — or, in presenter mode, replay its last full run.

    * full mode: calls ``run()``, saves its outcome (JSON: lists, dicts, numbers, strings) with the time it
      took to :func:`experiment_path`, and returns it;
    * presenter mode (full mode with ``COURSE_USE_CHECKPOINTS=1``): returns the saved outcome of the last
      full run without running anything, and says so — a live class sees the measured table in seconds;
      without a saved outcome it runs as in full mode;
    * fast mode: calls ``run()`` (its tiny sizes exercise the code) and saves nothing.

    ``settings`` (JSON data: sizes, seeds, the recipe) are saved with the outcome; a presenter run replays
    only an outcome saved with equal settings, and re-runs the experiment when they have changed since.
    """
    path = experiment_path(chapter, name)
    settings = None if settings is None else json.loads(json.dumps(settings, allow_nan=False))  # tuples → lists
    if config.mode() == "full" and config.use_checkpoints() and path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("settings") == settings:
            print(f"replayed experiment {name!r} from the full run of {saved['recorded'][:10]} "
                  f"({saved['seconds'] / 60:.1f} min there; unset COURSE_USE_CHECKPOINTS to re-run it)")
            return saved["outcome"]
        print(f"experiment {name!r}: its settings changed since the saved run, so it runs again")
    started = time.perf_counter()
    outcome = run()
    if config.mode() == "full":
        record = {"chapter": chapter, "experiment": name, "seconds": round(time.perf_counter() - started, 1),
                  "device": config.device_description(),
                  "recorded": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "outcome": outcome}
        if settings is not None:
            record["settings"] = settings
        text = json.dumps(record, indent=1, allow_nan=False) + "\n"  # fails on what JSON cannot hold
        if json.loads(text)["outcome"] != outcome:
            raise TypeError(f"experiment {name!r}: run() must return JSON data (lists, dicts with string keys, "
                            "numbers, strings) so that a presenter can replay it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return outcome


def load_results(mode: str = "full") -> dict[str, dict]:
    """Every recorded chapter result of ``mode``, keyed by chapter."""
    found = {}
    for chapter in CHAPTERS:
        path = results_path(chapter, mode)
        if path.exists():
            found[chapter] = json.loads(path.read_text(encoding="utf-8"))
    return found


def format_record(record: dict) -> str:
    """A small Markdown table of one run's metrics (what a notebook shows at its end)."""
    heading = (f"Chapter {record['chapter']} — {record['mode']} mode on {record['device']}, "
               f"{record['seconds']:.0f} s for the whole notebook")
    lines = [heading, "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4g} |" for name, value in record["metrics"].items()]
    return "\n".join(lines)


def show_record(record: dict):
    """Display :func:`format_record` as Markdown in a notebook (plain text elsewhere)."""
    text = format_record(record)
    try:
        from IPython.display import Markdown, display
        display(Markdown(text))
    except ImportError:  # pragma: no cover - IPython is always there in notebooks
        print(text)


def readme_table(results: dict[str, dict] | None = None) -> str:
    """The README's chapter table, built from the committed full-mode result files."""
    results = load_results("full") if results is None else results
    lines = ["| # | chapter | notebook | headline result (full mode) | full-mode run time | device |",
             "|---|---|---|---|---|---|"]
    for chapter, (title, notebook) in CHAPTERS.items():
        record = results.get(chapter)
        if record is None:
            lines.append(f"| {chapter} | {title} | — | not written yet | — | — |")
            continue
        name = record["headline"]
        minutes, seconds = divmod(round(record["seconds"]), 60)
        loaded = " (checkpoints loaded, not trained)" if record.get("checkpoints_loaded") else ""
        lines.append(f"| {chapter} | {title} | [{notebook}](notebooks/{notebook}) | "
                     f"{name} = {record['metrics'][name]:.4g} | {minutes} min {seconds:02d} s{loaded} | "
                     f"{record['device'].split(' (')[0]} |")
    return "\n".join(lines)


def update_readme(readme: Path | None = None, check: bool = False) -> bool:
    """Rewrite the table between the README markers; with ``check``, only report whether it is current."""
    readme = readme or config.repo_root() / "README.md"
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} lacks the markers {README_START} … {README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new_text = f"{head}{README_START}\n{readme_table()}\n{README_END}{tail}"
    if check:
        return new_text == text
    readme.write_text(new_text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.results")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the README's results table")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README table is out of date")
    args = parser.parse_args(argv)
    if args.check:
        current = update_readme(check=True)
        print("README results table is current" if current else
              "README results table is stale: run python -m course_utils.results --update-readme")
        return 0 if current else 1
    if args.update_readme:
        update_readme()
        print("README results table rebuilt")
        return 0
    print(readme_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
