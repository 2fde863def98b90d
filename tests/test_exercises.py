"""Every checker accepts its reference solution and rejects the typical wrong answers."""

import pytest
import torch

from course_utils.exercises import ch00
from solutions import ch00 as solution


def _not_solved(*args):
    raise NotImplementedError


CH00 = [
    (ch00.check_to_float_batch, solution.to_float_batch, [
        ("reshape instead of permute", lambda x: x.reshape(x.shape[0], x.shape[3], x.shape[1], x.shape[2]).float() / 255),
        ("forgot /255", lambda x: x.permute(0, 3, 1, 2).float()),
        ("float64", lambda x: x.permute(0, 3, 1, 2).double() / 255),
        ("kept NHWC", lambda x: x.float() / 255),
    ]),
    (ch00.check_accuracy_from_logits, solution.accuracy_from_logits, [
        ("count not fraction", lambda logits, y: float((logits.argmax(1) == y).sum())),
        ("returns a tensor", lambda logits, y: (logits.argmax(1) == y).float().mean()),
        ("arg-max over the batch", lambda logits, y: (logits.argmax(0)[: len(y)] == y[: logits.shape[1]]).float().mean().item()),
    ]),
    (ch00.check_pairwise_squared_distances, solution.pairwise_squared_distances, [
        ("not squared", lambda a, b: torch.cdist(a, b)),
        ("transposed", lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1).T),
        ("summed the wrong axis", lambda a, b: ((a[:, None] - b[None]) ** 2).sum(0)),
    ]),
    (ch00.check_train_step, solution.train_step, [
        ("no zero_grad", lambda m, x, y, opt, f: _step(m, x, y, opt, f, zero=False)),
        ("no optimizer.step", lambda m, x, y, opt, f: _step(m, x, y, opt, f, step=False)),
        ("returns a tensor", lambda m, x, y, opt, f: _step(m, x, y, opt, f, as_float=False)),
    ]),
]


def _step(model, inputs, targets, optimizer, loss_fn, zero=True, step=True, as_float=True):
    if zero:
        optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    if step:
        optimizer.step()
    return loss.item() if as_float else loss


@pytest.mark.parametrize("checker, reference, wrong_answers", CH00, ids=lambda v: getattr(v, "__name__", ""))
def test_checker_accepts_solution_and_rejects_typical_mistakes(checker, reference, wrong_answers):
    assert checker(reference).status == "passed"
    assert checker(_not_solved).status == "not solved"
    for description, wrong in wrong_answers:
        result = checker(wrong)
        assert result.status == "failed", f"{checker.__name__} accepted a wrong answer: {description}"
