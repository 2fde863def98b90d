"""The test suite that mutmut runs: every checker must accept its reference solution.

mutmut mutates solutions/*.py (one small change at a time) and runs these tests against each mutant; a
mutant is *killed* when its checker no longer says "passed". So a surviving mutant is a wrong solution
the checker accepts — or an equivalent rewrite, listed with its reason in mutation/equivalent.toml.
"""

import importlib

import pytest

CHAPTERS = [f"ch{n:02d}" for n in range(10)]


def _pairs():
    for chapter in CHAPTERS:
        checkers = importlib.import_module(f"course_utils.exercises.{chapter}")
        for name in sorted(vars(checkers)):
            if name.startswith("check_"):
                yield chapter, name[len("check_"):]


@pytest.mark.parametrize("chapter, name", list(_pairs()))
def test_checker_accepts_reference(chapter, name):
    checker = getattr(importlib.import_module(f"course_utils.exercises.{chapter}"), f"check_{name}")
    solution = getattr(importlib.import_module(f"solutions.{chapter}"), name)
    assert checker(solution).status == "passed"
