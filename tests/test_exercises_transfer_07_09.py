"""Transfer exercises of chapters 07–09 (issue 19, point 3): ideas the notebooks did not show.

Each entry of ``TRANSFER_CASES``: the checker, its reference solution, right answers written in other styles
(loops vs vectorised, NumPy vs torch, float64), and at least three plausible wrong answers it must reject.
"""

import pytest

from test_exercises import _not_solved

TRANSFER_CASES = [
]


@pytest.mark.parametrize("checker, right_answers, wrong_answers", TRANSFER_CASES,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_transfer_checker_accepts_right_answers_and_rejects_wrong_ones(checker, right_answers, wrong_answers):
    assert checker(_not_solved).status == "not solved"
    assert len(right_answers) >= 2, "the reference solution and at least one right answer in another style"
    for description, right in right_answers:
        result = checker(right)
        assert result.status == "passed", f"{checker.__name__} rejected a right answer ({description}): {result.message}"
    assert len(wrong_answers) >= 3
    for description, wrong in wrong_answers:
        result = checker(wrong)
        assert result.status == "failed", f"{checker.__name__} accepted a wrong answer: {description}"
