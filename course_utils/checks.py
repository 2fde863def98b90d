"""The exercise-checker framework: instant, specific feedback that never breaks a notebook run.

A checker runs a student's function through named cases. Each case raises :class:`CheckFailed` with a
message that says what was wrong ("for all-correct logits your accuracy is 0.5, expected 1.0"). An
unsolved stub (``raise NotImplementedError`` in the student's own function) prints "not solved yet".
Nothing here raises into the notebook: the result is printed and returned as a :class:`CheckResult`
(truthy when passed).

The helpers compare *behaviour*: values within a tolerance whatever the floating dtype (float32 or
float64 answers are both right), NumPy scalars where a Python number is asked, and :func:`call`, which
runs the student's function and fails the check when it changed one of its inputs in place.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch


class CheckFailed(AssertionError):
    """Raised by a case when the student's answer is wrong; the message is shown to the student."""


@dataclass
class CheckResult:
    title: str
    status: str  # "passed", "failed" or "not solved"
    message: str

    def __bool__(self) -> bool:
        return self.status == "passed"

    def _ipython_display_(self):
        # The message was already printed; showing the object again would duplicate it.
        pass


Case = tuple[str, Callable[[Callable], None]]

_ICONS = {"passed": "✅", "failed": "❌", "not solved": "⏳"}

NOT_SOLVED = ("not solved yet — replace `raise NotImplementedError` with your code; the notebook carries on "
              "with the reference")


def _student_code(student_fn):
    """The code object of the student's function (through partials, bound methods and callable objects)."""
    while isinstance(student_fn, functools.partial):
        student_fn = student_fn.func
    student_fn = getattr(student_fn, "__func__", student_fn)
    code = getattr(student_fn, "__code__", None)
    if code is None and callable(student_fn):
        code = getattr(type(student_fn).__call__, "__code__", None)
    return code


def _raising_frame(error: BaseException):
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return None if traceback is None else traceback.tb_frame


def _not_implemented_result(title: str, student_fn: Callable, error: NotImplementedError,
                            description: str) -> CheckResult:
    """'Not solved' only when the student's own code raised it; nn.Module's missing forward is a mistake."""
    frame = _raising_frame(error)
    code = _student_code(student_fn)
    if frame is not None and code is not None and (
            frame.f_code is code or frame.f_code.co_filename == code.co_filename):
        return CheckResult(title, "not solved", NOT_SOLVED)
    where = frame.f_code.co_name if frame is not None else "?"
    if where == "_forward_unimplemented":
        return CheckResult(title, "failed", f"{description}: your module has no `forward` method, so nn.Module "
                                            "raised NotImplementedError — is `def forward(self, x)` spelled "
                                            "right and indented inside the class?")
    return CheckResult(title, "failed", f"{description}: your code raised NotImplementedError in {where}()")


def run_checks(title: str, student_fn: Callable, cases: Iterable[Case]) -> CheckResult:
    """Run ``cases`` (``(description, case_fn)`` pairs) against ``student_fn`` and report the outcome."""
    cases = list(cases)
    description = ""
    try:
        for description, case in cases:
            with torch.random.fork_rng(devices=[]):  # the checks never move the notebook's random state
                case(student_fn)
    except NotImplementedError as error:
        result = _not_implemented_result(title, student_fn, error, description)
    except CheckFailed as failure:
        result = CheckResult(title, "failed", f"{description}: {failure}")
    except Exception as error:  # noqa: BLE001 - the student's code crashed: say where, no traceback wall
        result = CheckResult(title, "failed", f"{description}: your code raised "
                                              f"{type(error).__name__}: {error}")
    else:
        result = CheckResult(title, "passed", f"all {len(cases)} checks passed")
    print(f"{_ICONS[result.status]} {title}: {result.message}")
    return result


# --- calling the student's function -----------------------------------------------------------------------

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return None


def _unchanged(before, after) -> bool:
    if isinstance(before, torch.Tensor):
        return (before.shape == after.shape and before.dtype == after.dtype
                and torch.equal(before.nan_to_num(), after.detach().nan_to_num())
                and torch.equal(before.isnan(), after.detach().isnan()))
    return before.shape == after.shape and np.array_equal(before, after, equal_nan=before.dtype.kind == "f")


def call(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``; fails the check when a tensor or array argument was changed in place."""
    snapshots = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
    result = fn(*args, **kwargs)
    names = [f"{_ORDINALS[i] if i < len(_ORDINALS) else str(i + 1) + 'th'} argument" for i in range(len(args))]
    names += [f"argument {k}=" for k in kwargs]
    for name, before, after in zip(names, snapshots, [*args, *kwargs.values()]):
        if before is not None and not _unchanged(before, after):
            raise CheckFailed(f"your function changed its {name} in place; leave the inputs as they are "
                              "(work on a copy, or use out-of-place operations: x = x + 1, not x += 1)")
    return result


# --- comparisons ------------------------------------------------------------------------------------------

def as_double(value) -> torch.Tensor:
    """A float64 copy of a tensor, array or number, detached (so any float dtype compares)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def close(got, expected, atol: float = 1e-5, rtol: float = 1e-4, equal_nan: bool = False) -> bool:
    """True when ``got`` has ``expected``'s shape and values within tolerance, whatever either's dtype."""
    if not isinstance(got, (torch.Tensor, np.ndarray, numbers.Real)) or isinstance(got, bool):
        return False
    got_d, expected_d = as_double(got), as_double(expected)
    return got_d.shape == expected_d.shape and bool(
        torch.allclose(got_d, expected_d, atol=atol, rtol=rtol, equal_nan=equal_nan))


def is_real(value) -> bool:
    """A plain number: Python or NumPy int/float, not a bool, tensor or array."""
    return isinstance(value, (numbers.Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_int(value) -> bool:
    """A Python or NumPy integer (not a bool, float or tensor)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# --- helpers that write the specific messages ----------------------------------------------------------

def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 6:
            return f"{value.tolist()} ({value.dtype})"
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return repr(value)


def expect_type(got, expected_type, what: str) -> None:
    if expected_type is float and is_real(got) and not is_int(got):
        return  # NumPy floats are floats for the student's purposes
    if expected_type is int and is_int(got):
        return
    if not isinstance(got, expected_type) or (expected_type in (int, float) and isinstance(got, bool)):
        names = getattr(expected_type, "__name__", str(expected_type))
        raise CheckFailed(f"{what} should be a {names}, got {type(got).__name__}")


def expect_shape(got: torch.Tensor, shape: tuple, what: str) -> None:
    expect_type(got, torch.Tensor, what)
    if tuple(got.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}")


def expect_dtype(got: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    expect_type(got, torch.Tensor, what)
    if got.dtype != dtype:
        raise CheckFailed(f"{what} has dtype {got.dtype}, expected {dtype}")


def expect_float_tensor(got, what: str) -> None:
    """A float32 or float64 tensor (both are right unless the exercise asks for one dtype)."""
    expect_type(got, torch.Tensor, what)
    if got.dtype not in (torch.float32, torch.float64):
        raise CheckFailed(f"{what} has dtype {got.dtype}, expected a floating-point tensor")


def expect_close(got, expected, what: str, atol: float = 1e-5, rtol: float = 1e-4, equal_nan: bool = False) -> None:
    """Numbers or tensors equal within tolerance; the message shows both values (or the worst entry)."""
    if isinstance(expected, torch.Tensor):
        expect_shape(got, tuple(expected.shape), what)
        got_f, expected_f = as_double(got), as_double(expected)
        if not torch.allclose(got_f, expected_f, atol=atol, rtol=rtol, equal_nan=equal_nan):
            difference = (got_f - expected_f).abs()
            if equal_nan:
                difference = difference.masked_fill(got_f.isnan() & expected_f.isnan(), 0)
            worst = difference.nan_to_num(float("inf")).argmax()
            index = tuple(int(i) for i in torch.unravel_index(worst, got.shape))
            raise CheckFailed(f"{what} differs: at index {index} you have {got_f[index].item():.6g}, "
                              f"expected {expected_f[index].item():.6g}")
        return
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not is_real(got):
        raise CheckFailed(f"{what} should be a number, got {_describe(got)}")
    got = float(got)
    if not abs(got - expected) <= atol + rtol * abs(expected):
        raise CheckFailed(f"{what} is {got:.6g}, expected {expected:.6g}")
