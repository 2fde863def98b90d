"""Mutation testing of the exercise checkers with mutmut: every mutant of solutions/ must be rejected.

    python mutation/run.py            # full run (663 mutants: ≈ 50 min on 2 shared CPU cores), then the verdict
    python mutation/run.py --in-memory  # the same mutants, each replayed in memory against its checker (minutes)
    python mutation/run.py --record   # ... and rewrite mutation/mutants.json, the sample tests/test_mutants.py replays

mutmut works on a copy of the project: this script lays one out in a scratch folder (solutions/, the
test module mutation/test_checkers.py as tests/, a setup.cfg with mutmut's settings), so the repository
keeps no mutmut config or mutants/ folder. ``course_utils`` (the checkers) is imported from the
installed package, unmutated. Afterwards every surviving mutant must be listed in
mutation/equivalent.toml with a one-line reason; the script exits 1 when one is not (or a listed one was
killed, so the list stays exact).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLOW_FUNCTIONS = {"export_dynamic"}
HERE = ROOT / "mutation"
SETUP_CFG = """[mutmut]
source_paths = solutions/
pytest_add_cli_args = -p no:cacheprovider -p no:randomly -q -o addopts= -W ignore
pytest_add_cli_args_test_selection = tests/
timeout_multiplier = 10.0
timeout_constant = 20.0
use_git_change_detection = false
process_isolation = forkserver
"""


def equivalent_here() -> dict[str, dict]:
    """The entries of equivalent.toml that are equivalent with the libraries installed here.

    An entry with ``below = "numpy 2.3"`` counts only while that distribution is older: from then on the
    library rejects the mutated call itself, so the mutant is killed.
    """
    from importlib import metadata

    from packaging.version import Version

    listed = tomllib.loads((HERE / "equivalent.toml").read_text()).get("mutant", {})
    here = {}
    for name, entry in listed.items():
        if "below" in entry:
            package, version = entry["below"].split()
            if Version(metadata.version(package)) >= Version(version):
                continue
        here[name] = entry
    return here


def lay_out(workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "tests").mkdir(parents=True)
    shutil.copytree(ROOT / "solutions", workdir / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(HERE / "test_checkers.py", workdir / "tests" / "test_checkers.py")
    (workdir / "setup.cfg").write_text(SETUP_CFG)


def results(workdir: Path) -> dict[str, str]:
    """mutant name → status, from ``mutmut results --all true``."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir,
                         capture_output=True, text=True, check=True).stdout
    statuses = {}
    for line in out.splitlines():
        match = re.match(r"\s*(solutions\.\S+__mutmut_\d+): (.+)$", line)
        if match:
            statuses[match.group(1)] = match.group(2).strip()
    return statuses


def mutant_sources(workdir: Path) -> dict[str, tuple[str, str, str]]:
    """mutant name → (module, function, the mutated function's source with the original name)."""
    sources = {}
    for path in sorted((workdir / "mutants" / "solutions").glob("ch*.py")):
        module = f"solutions.{path.stem}"
        tree = ast.parse(path.read_text())
        for node in tree.body:
            match = isinstance(node, ast.FunctionDef) and re.match(r"x_(\w+?)__mutmut_(\d+)$", node.name)
            if match:
                function = match.group(1)
                node.name = function
                sources[f"{module}.x_{function}__mutmut_{match.group(2)}"] = (module, function, ast.unparse(node))
    return sources


GENERATE = """
from pathlib import Path
from mutmut.__main__ import create_mutants_for_file
for path in sorted(Path("solutions").glob("ch*.py")):
    out = Path("mutants") / path
    out.parent.mkdir(parents=True, exist_ok=True)
    result = create_mutants_for_file(path, out)
    if result.error:
        raise result.error
"""


def _replay(item: tuple[str, tuple[str, str, str], int]) -> tuple[str, str]:
    """One mutant, applied in memory (as tests/test_mutants.py does): "killed", "survived" or "timeout"."""
    import contextlib
    import importlib
    import io
    import signal

    import test_mutants  # tests/: the replay the quick sample uses

    name, (module, function, source), timeout = item
    record = {"name": name, "module": module, "function": function, "source": source}

    def give_up(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(timeout)
    try:
        mutated = test_mutants._module_with(record)
        checkers = importlib.import_module(f"course_utils.exercises.{module.rsplit('.', 1)[1]}")
        statuses = []
        with contextlib.redirect_stdout(io.StringIO()):
            for checker in test_mutants._checkers_for(record):
                target = function if checker == f"check_{function}" else checker[len("check_"):]
                statuses.append(getattr(checkers, checker)(getattr(mutated, target)).status)
        return name, "survived" if statuses and all(s == "passed" for s in statuses) else "killed"
    except TimeoutError:
        return name, "timeout"
    except Exception:  # noqa: BLE001 - a mutant that breaks the module is rejected
        return name, "killed"
    finally:
        signal.alarm(0)


def run_in_memory(workdir: Path, processes: int, timeout: int = 120) -> dict[str, str]:
    """Generate mutmut's mutants of solutions/ and replay each in memory: mutant name → status."""
    import multiprocessing

    subprocess.run([sys.executable, "-c", GENERATE], cwd=workdir, check=True)
    sources = mutant_sources(workdir)
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.update(COURSE_FAST="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
                      MKL_NUM_THREADS="1")
    items = [(name, sources[name], timeout) for name in sorted(sources)]
    # fork before torch is imported here; a fresh worker every 25 mutants keeps memory flat
    with multiprocessing.get_context("fork").Pool(processes, maxtasksperchild=25) as pool:
        return dict(pool.imap_unordered(_replay, items, chunksize=4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "cv-course-mutation")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--record", action="store_true", help="rewrite mutation/mutants.json (the replay sample)")
    parser.add_argument("--sample", type=int, default=60, help="mutants per replay sample")
    parser.add_argument("--reuse", action="store_true", help="only read the results of a finished run")
    parser.add_argument("--in-memory", action="store_true",
                        help="replay every mutant in memory against its checker instead of mutmut's test runs")
    args = parser.parse_args()

    started = time.time()
    if args.in_memory:
        lay_out(args.workdir)
        statuses = run_in_memory(args.workdir, args.max_children)
    elif not args.reuse:
        lay_out(args.workdir)
        # One thread per process: torch's OpenMP pool does not survive fork() (the children hang).
        env = dict(os.environ, COURSE_FAST="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)],
                       cwd=args.workdir, env=env, check=False)
    if not args.in_memory:
        statuses = results(args.workdir)
    equivalent = equivalent_here()
    survivors = sorted(name for name, status in statuses.items() if status != "killed")
    unlisted = [name for name in survivors if name not in equivalent]
    stale = sorted(name for name in equivalent if statuses.get(name) == "killed")
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    print(f"\n{len(statuses)} mutants: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + f"; {len(survivors) - len(unlisted)} of the survivors are listed as equivalent"
          + f" ({time.time() - started:.0f} s)")
    for name in unlisted:
        print(f"NOT REJECTED and not listed as equivalent: {name} ({statuses[name]})")
        if args.in_memory:
            print(mutant_sources(args.workdir)[name][2])
        else:
            subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=args.workdir, check=False)
    for name in stale:
        print(f"listed as equivalent but killed (remove it from equivalent.toml): {name}")

    if args.record:
        sources = mutant_sources(args.workdir)
        # ONNX export takes seconds per run: its mutants stay out of the quick replay sample.
        killed = sorted(name for name, status in statuses.items() if status == "killed" and name in sources
                        and sources[name][1] not in SLOW_FUNCTIONS)
        modules = sorted({sources[name][0] for name in killed})
        generator, sample = random.Random(0), []
        for module in modules:  # the same share of every chapter
            of_module = [name for name in killed if sources[name][0] == module]
            sample += generator.sample(of_module, min(len(of_module), -(-args.sample // len(modules))))
        sample.sort()
        records = [dict(zip(("name", "module", "function", "source"), (name, *sources[name]))) for name in sample]
        (HERE / "mutants.json").write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
        print(f"recorded {len(records)} killed mutants in mutation/mutants.json")
    return 1 if unlisted or stale else 0


if __name__ == "__main__":
    sys.exit(main())
