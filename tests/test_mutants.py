"""Replays a fixed sample of recorded mutants of solutions/: each checker must reject its mutant.

mutation/mutants.json holds mutants that mutmut made of the reference solutions (the mutated function's
source; see mutation/run.py for the full run). Each is applied in memory: the solution module is executed
afresh, the mutated function replaces the original, and the checker of that function (or of the
functions that call a mutated helper) must fail it. Quick enough for every CI run; the full mutation run
is ``python mutation/run.py``.
"""

import ast
import contextlib
import importlib
import importlib.util
import io
import json
import tomllib
import types
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
RECORDS = json.loads((ROOT / "mutation" / "mutants.json").read_text())
_spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
MUTATION_RUN = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(MUTATION_RUN)


def _module_with(record: dict) -> types.ModuleType:
    """A fresh copy of the solution module with ``record``'s mutated function swapped in."""
    path = ROOT / (record["module"].replace(".", "/") + ".py")
    module = types.ModuleType(f"_mutant_{record['module'].replace('.', '_')}")
    module.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)  # noqa: S102 - our own source
    assert callable(module.__dict__.get(record["function"])), f"{record['function']} is gone from {path.name}"
    exec(compile(record["source"], f"<mutant {record['name']}>", "exec"), module.__dict__)  # noqa: S102
    return module


def _checkers_for(record: dict) -> list:
    """check_<function>, or for a helper the checkers of every solution function that calls it."""
    chapter = record["module"].rsplit(".", 1)[1]
    checkers = importlib.import_module(f"course_utils.exercises.{chapter}")
    if hasattr(checkers, f"check_{record['function']}"):
        return [f"check_{record['function']}"]
    tree = ast.parse((ROOT / (record["module"].replace(".", "/") + ".py")).read_text())
    callers = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
               and any(isinstance(n, ast.Name) and n.id == record["function"] for n in ast.walk(node))]
    return [f"check_{name}" for name in callers if hasattr(checkers, f"check_{name}")]


def test_the_sample_is_large_and_spans_every_chapter():
    assert len(RECORDS) >= 40
    assert {r["module"] for r in RECORDS} == {f"solutions.ch{n:02d}" for n in range(10)}


def test_equivalent_mutants_each_have_a_reason():
    listed = tomllib.loads((ROOT / "mutation" / "equivalent.toml").read_text()).get("mutant", {})
    for name, entry in listed.items():
        assert entry.get("reason", "").strip(), f"{name} is listed as equivalent without a reason"
        assert "\n" not in entry["reason"], f"{name}: the reason should be one line"
        if "below" in entry:  # "numpy 2.3": equivalent only with older releases of that distribution
            package, version = entry["below"].split()
            assert metadata.version(package) and Version(version), name


def test_a_conditionally_equivalent_mutant_counts_only_below_its_version(monkeypatch):
    name = "solutions.ch01.x_equalize_histogram__mutmut_3"  # listed with below = "numpy 2.3"
    monkeypatch.setattr(metadata, "version", lambda package: "2.2.6")
    assert name in MUTATION_RUN.equivalent_here()
    monkeypatch.setattr(metadata, "version", lambda package: "2.3.0")
    assert name not in MUTATION_RUN.equivalent_here()
    assert "solutions.ch01.x_equalize_histogram__mutmut_5" in MUTATION_RUN.equivalent_here()


@pytest.mark.parametrize("record", RECORDS, ids=[r["name"].removeprefix("solutions.") for r in RECORDS])
def test_checker_rejects_recorded_mutant(record):
    if record["name"] in MUTATION_RUN.equivalent_here():
        pytest.skip(f"equivalent with the libraries installed here: {MUTATION_RUN.equivalent_here()[record['name']]}")
    module = _module_with(record)
    chapter = importlib.import_module(f"course_utils.exercises.{record['module'].rsplit('.', 1)[1]}")
    names = _checkers_for(record)
    assert names, f"no checker covers {record['function']}"
    statuses = []
    with contextlib.redirect_stdout(io.StringIO()):
        for name in names:
            target = record["function"] if name == f"check_{record['function']}" else name[len("check_"):]
            statuses.append(getattr(chapter, name)(getattr(module, target)).status)
    assert "failed" in statuses, f"{record['name']} was accepted by {names}:\n{record['source']}"
