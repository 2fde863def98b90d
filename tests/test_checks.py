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
