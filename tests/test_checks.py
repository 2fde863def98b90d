import pytest
import torch

from course_utils import checks


def _case_ok(fn):
    fn()


def test_passed_result_is_truthy_and_printed(capsys):
    result = checks.run_checks("demo", lambda: None, [("a", _case_ok), ("b", _case_ok)])
    assert result and result.status == "passed"
    assert "✅ demo: all 2 checks passed" in capsys.readouterr().out


def test_unsolved_stub_prints_not_solved_and_never_raises(capsys):
    def stub():
        raise NotImplementedError
    result = checks.run_checks("demo", stub, [("a", _case_ok)])
    assert not result and result.status == "not solved"
    assert "not solved yet" in capsys.readouterr().out


def test_failure_names_the_case_and_the_problem(capsys):
    def case(fn):
        raise checks.CheckFailed("your IoU of disjoint boxes is 0.2, expected 0")
    result = checks.run_checks("iou", lambda: None, [("first", _case_ok), ("disjoint", case)])
    assert result.status == "failed"
    assert result.message == "disjoint: your IoU of disjoint boxes is 0.2, expected 0"
    assert "❌ iou: disjoint:" in capsys.readouterr().out


def test_crashing_student_code_is_reported_not_raised():
    def crash():
        raise IndexError("index 5 is out of bounds")
    result = checks.run_checks("demo", crash, [("crash", _case_ok)])
    assert result.status == "failed" and "your code raised IndexError: index 5 is out of bounds" in result.message


def test_result_has_no_duplicate_notebook_display():
    assert checks.CheckResult("t", "passed", "m")._ipython_display_() is None


def test_expect_close_scalars():
    checks.expect_close(0.5, 0.5, "x")
    checks.expect_close(torch.tensor(0.5), 0.5, "x")
    with pytest.raises(checks.CheckFailed, match="your IoU is 0.2, expected 0"):
        checks.expect_close(0.2, 0.0, "your IoU")
    with pytest.raises(checks.CheckFailed, match=r"should be a number, got \[1.0, 2.0\]"):
        checks.expect_close(torch.tensor([1.0, 2.0]), 1.0, "x")
    with pytest.raises(checks.CheckFailed, match="should be a number, got True"):
        checks.expect_close(True, 1.0, "x")


def test_expect_close_tensors_points_at_the_worst_entry():
    expected = torch.zeros(2, 3)
    got = expected.clone()
    got[1, 2] = 5.0
    with pytest.raises(checks.CheckFailed, match=r"at index \(1, 2\) you have 5, expected 0"):
        checks.expect_close(got, expected, "the output")
    with pytest.raises(checks.CheckFailed, match=r"has shape \(3, 2\), expected \(2, 3\)"):
        checks.expect_close(torch.zeros(3, 2), expected, "the output")


def test_expect_type_shape_dtype_messages():
    with pytest.raises(checks.CheckFailed, match="should be a float, got int"):
        checks.expect_type(1, float, "the loss")
    with pytest.raises(checks.CheckFailed, match="should be a Tensor, got list"):
        checks.expect_shape([1], (1,), "x")
    with pytest.raises(checks.CheckFailed, match="has dtype torch.int64, expected torch.float32"):
        checks.expect_dtype(torch.zeros(1, dtype=torch.long), torch.float32, "x")


def test_describe_large_and_small_values():
    assert "shape (10,)" in checks._describe(torch.zeros(10))
    assert checks._describe("a") == "'a'"


# --- issue 19: 'not solved' only from the student's own code; dtype-blind comparisons; no mutation -----

import functools

import numpy as np
from torch import nn


def test_not_solved_only_when_the_students_own_function_raised(capsys):
    def stub(x):
        raise NotImplementedError

    def case(fn):
        fn(1)

    assert checks.run_checks("t", stub, [("c", case)]).status == "not solved"
    assert checks.run_checks("t", functools.partial(stub), [("c", case)]).status == "not solved"

    class Stub:
        def __call__(self, x):
            raise NotImplementedError

    assert checks.run_checks("t", Stub(), [("c", case)]).status == "not solved"


def test_not_implemented_raised_elsewhere_is_a_failure():
    class Misspelt(nn.Module):
        def foward(self, x):  # typo: nn.Module's forward raises NotImplementedError itself
            return x

    def build_and_run(fn):
        fn()(torch.zeros(1))

    result = checks.run_checks("block", lambda: Misspelt(), [("forward", build_and_run)])
    assert result.status == "failed" and "no `forward` method" in result.message

    def library_call(fn):
        fn()

    def student():
        return np.lib.NumpyVersion  # returns fine

    def raises_in_helper():
        return _helper_raising()

    assert checks.run_checks("t", student, [("c", library_call)]).status == "passed"
    result = checks.run_checks("t", raises_in_helper, [("c", library_call)])
    assert result.status == "not solved"  # the helper sits in the same file as the student's function


def _helper_raising():
    raise NotImplementedError


def test_not_implemented_from_a_library_is_a_failure():
    result = checks.run_checks("t", np.add, [("c", lambda fn: _raise_from_torch())])
    assert result.status == "failed" and "NotImplementedError" in result.message
    result = checks.run_checks("t", np.add, [("c", lambda fn: _raise_not_implemented())])
    assert result.status == "failed" and "raised NotImplementedError in _raise_not_implemented()" in result.message
    assert checks._raising_frame(ValueError()) is None


def _raise_not_implemented():
    raise NotImplementedError


def _raise_from_torch():
    nn.Module()(torch.zeros(1))  # raises from torch's _forward_unimplemented


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.run_checks("t", lambda: None, [("reseeds", lambda fn: torch.manual_seed(0))])
    assert torch.equal(torch.rand(3), expected)


def test_call_reports_in_place_changes_of_inputs():
    x, y = torch.ones(3), np.zeros(2)
    assert checks.call(lambda a, b: a + 1, x, y).tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(checks.CheckFailed, match="changed its first argument in place"):
        checks.call(lambda a, b: a.add_(1), torch.ones(3), y)
    with pytest.raises(checks.CheckFailed, match="changed its second argument in place"):
        checks.call(lambda a, b: b.__setitem__(0, 5.0), x, np.zeros(2))
    with pytest.raises(checks.CheckFailed, match="argument mask= in place"):
        checks.call(lambda a, mask: mask.fill_(False), x, mask=torch.ones(2, dtype=torch.bool))
    checks.call(lambda a: a, torch.tensor([float("nan")]))  # NaN equals NaN here


def test_close_and_expect_close_accept_any_float_dtype_and_numpy():
    assert checks.close(torch.ones(2, dtype=torch.float64), torch.ones(2))
    assert checks.close(np.ones(2, dtype=np.float32), torch.ones(2))
    assert not checks.close(torch.ones(3), torch.ones(2))
    assert not checks.close("1", 1.0) and not checks.close(True, 1.0)
    checks.expect_close(torch.ones(2, dtype=torch.float64), torch.ones(2), "x")
    checks.expect_close(np.float32(0.5), 0.5, "x")
    checks.expect_close(torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]), "x", equal_nan=True)
    with pytest.raises(checks.CheckFailed, match=r"at index \(1,\)"):
        checks.expect_close(torch.tensor([float("nan"), 2.0]), torch.tensor([float("nan"), 1.0]), "x", equal_nan=True)
    with pytest.raises(checks.CheckFailed, match="is nan"):
        checks.expect_close(float("nan"), 1.0, "x")


def test_number_kinds():
    assert checks.is_int(3) and checks.is_int(np.int64(3)) and not checks.is_int(3.0) and not checks.is_int(True)
    assert checks.is_real(np.float32(1)) and checks.is_real(2) and not checks.is_real(np.bool_(True))
    assert not checks.is_real(torch.tensor(1.0)) and not checks.is_real(np.array(1.0))
    checks.expect_type(np.float64(1.0), float, "x")
    checks.expect_type(np.int32(1), int, "x")
    with pytest.raises(checks.CheckFailed, match="should be a float, got int64"):
        checks.expect_type(np.int64(1), float, "x")
    with pytest.raises(checks.CheckFailed, match="should be a int, got bool"):
        checks.expect_type(True, int, "x")
    checks.expect_float_tensor(torch.zeros(1, dtype=torch.float64), "x")
    with pytest.raises(checks.CheckFailed, match="floating-point"):
        checks.expect_float_tensor(torch.zeros(1, dtype=torch.long), "x")
    assert checks.as_double(3).dtype == torch.float64
