"""The exercise-checker framework: instant, specific feedback that never breaks a notebook run.

A checker runs a student's function through named cases. Each case raises :class:`CheckFailed` with a
message that says what was wrong ("for all-correct logits your accuracy is 0.5, expected 1.0"). An
unsolved stub (``raise NotImplementedError``) prints "not solved yet". Nothing here raises into the
notebook: the result is printed and returned as a :class:`CheckResult` (truthy when passed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


def run_checks(title: str, student_fn: Callable, cases: Iterable[Case]) -> CheckResult:
    """Run ``cases`` (``(description, case_fn)`` pairs) against ``student_fn`` and report the outcome."""
    cases = list(cases)
    description = ""
    try:
        for description, case in cases:
            case(student_fn)
    except NotImplementedError:
        result = CheckResult(title, "not solved", "not solved yet — replace `raise NotImplementedError` "
                                                  "with your code; the notebook carries on with the reference")
    except CheckFailed as failure:
        result = CheckResult(title, "failed", f"{description}: {failure}")
    except Exception as error:  # noqa: BLE001 - the student's code crashed: say where, no traceback wall
        result = CheckResult(title, "failed", f"{description}: your code raised "
                                              f"{type(error).__name__}: {error}")
    else:
        result = CheckResult(title, "passed", f"all {len(cases)} checks passed")
    print(f"{_ICONS[result.status]} {title}: {result.message}")
    return result


# --- helpers that write the specific messages ----------------------------------------------------------

def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 6:
            return f"{value.tolist()} ({value.dtype})"
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return repr(value)


def expect_type(got, expected_type, what: str) -> None:
    if not isinstance(got, expected_type):
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


def expect_close(got, expected, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Numbers or tensors equal within tolerance; the message shows both values (or the worst entry)."""
    if isinstance(expected, torch.Tensor):
        expect_shape(got, tuple(expected.shape), what)
        got_f, expected_f = got.detach().double(), expected.detach().double()
        if not torch.allclose(got_f, expected_f, atol=atol, rtol=rtol):
            worst = (got_f - expected_f).abs().argmax()
            index = tuple(int(i) for i in torch.unravel_index(worst, got.shape))
            raise CheckFailed(f"{what} differs: at index {index} you have {got_f[index].item():.6g}, "
                              f"expected {expected_f[index].item():.6g}")
        return
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise CheckFailed(f"{what} should be a number, got {_describe(got)}")
    if abs(got - expected) > atol + rtol * abs(expected):
        raise CheckFailed(f"{what} is {got:.6g}, expected {expected:.6g}")
