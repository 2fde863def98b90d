"""Checkers for chapter 02's exercises (layer arithmetic, receptive field, gradient accumulation).

Sizes and counts are compared with what PyTorch's own layers produce; the receptive field with the set of
input pixels a gradient reaches; accumulated gradients with one full-batch backward pass, on batches that
do not split into equal chunks.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..checks import CheckFailed, call, close, expect_close, is_int, run_checks

_CONV_CASES = [(28, 3, 1, 1, 1), (28, 5, 1, 0, 1), (32, 3, 2, 1, 1), (224, 7, 2, 3, 1), (17, 3, 2, 0, 1),
               (30, 3, 1, 2, 2), (28, 2, 2, 0, 1), (7, 7, 1, 0, 1), (9, 3, 3, 1, 2), (5, 1, 2, 0, 1),
               (16, 3, 4, 0, 3), (11, 4, 3, 2, 1)]


def _expect_int(got, what: str) -> None:
    if not is_int(got):
        raise CheckFailed(f"{what} should be an int, got {type(got).__name__} {got!r}"
                          + (" — use floor division // (or int(...)) so the answer is a whole number"
                             if isinstance(got, float) else ""))


def check_conv_output_size(fn):
    """``fn(size, kernel, stride, padding, dilation) -> int`` must match nn.Conv2d."""
    def against_pytorch(fn):
        for size, kernel, stride, padding, dilation in _CONV_CASES:
            layer = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
            expected = layer(torch.zeros(1, 1, size, size)).shape[-1]
            got = fn(size, kernel, stride, padding, dilation)
            _expect_int(got, "the output size")
            if got != expected:
                raise CheckFailed(f"for size={size}, kernel={kernel}, stride={stride}, padding={padding}, "
                                  f"dilation={dilation} you return {got}, nn.Conv2d gives {expected}")

    def defaults(fn):
        for size, kernel in ((28, 3), (10, 10), (6, 1)):
            got = fn(size, kernel)
            _expect_int(got, "the output size")
            if got != size - kernel + 1:
                raise CheckFailed(f"with the defaults (stride 1, padding 0, dilation 1) size={size}, "
                                  f"kernel={kernel} gives {size - kernel + 1}, you return {got}")

    return run_checks("conv_output_size", fn, [("compared with nn.Conv2d", against_pytorch),
                                               ("default stride, padding and dilation", defaults)])


def check_conv_parameter_count(fn):
    """``fn(in_channels, out_channels, kernel, bias, groups) -> int`` must match nn.Conv2d."""
    def against_pytorch(fn):
        for c_in, c_out, kernel, bias, groups in [(3, 64, 3, True, 1), (64, 128, 1, False, 1),
                                                  (256, 512, 3, False, 1), (32, 32, 3, False, 32),
                                                  (64, 128, 5, True, 4), (6, 9, 2, True, 3), (1, 1, 7, False, 1),
                                                  (12, 8, 3, True, 4)]:
            layer = nn.Conv2d(c_in, c_out, kernel, bias=bias, groups=groups)
            expected = sum(p.numel() for p in layer.parameters())
            got = fn(c_in, c_out, kernel, bias, groups)
            _expect_int(got, "the parameter count")
            if got != expected:
                raise CheckFailed(f"for Conv2d({c_in}, {c_out}, {kernel}, bias={bias}, groups={groups}) "
                                  f"you return {got}, PyTorch counts {expected}")

    def defaults(fn):
        got = fn(3, 16, 3)
        _expect_int(got, "the parameter count")
        if got != 3 * 16 * 9 + 16:
            raise CheckFailed(f"with the defaults (bias=True, groups=1) Conv2d(3, 16, 3) has {3 * 16 * 9 + 16} "
                              f"parameters, you return {got}")

    return run_checks("conv_parameter_count", fn, [("compared with nn.Conv2d", against_pytorch),
                                                   ("default bias and groups", defaults)])


def _receptive_field_by_gradient(layers) -> int:
    """Ground truth: the input pixels one central output pixel depends on (all-ones weights)."""
    modules = []
    for kernel, stride in layers:
        conv = nn.Conv2d(1, 1, kernel, stride=stride, bias=False)
        nn.init.ones_(conv.weight)
        modules.append(conv)
    net = nn.Sequential(*modules)
    x = torch.zeros(1, 1, 101, 101, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    columns = x.grad[0, 0].abs().sum(dim=0).nonzero()
    return int(columns.max() - columns.min() + 1)


def check_receptive_field(fn):
    """``fn([(kernel, stride), ...]) -> int`` pixels per side, checked by backpropagation."""
    def stacks(fn):
        for layers in ([(3, 1)], [(3, 1), (3, 1)], [(5, 1), (2, 2)], [(3, 1), (2, 2), (3, 1), (2, 2)],
                       [(7, 2), (3, 2), (3, 1)], [(1, 1)], [(2, 2), (2, 2), (2, 2)], [(3, 3), (5, 1)],
                       [(1, 2), (3, 1)]):
            expected = _receptive_field_by_gradient(layers)
            got = call(fn, list(layers))
            _expect_int(got, "the receptive field")
            if got != expected:
                hint = " — a layer after a stride-s layer adds (k − 1)·s, not k − 1" if got == 1 + sum(
                    k - 1 for k, _ in layers) else ""
                raise CheckFailed(f"for layers {layers} you return {got}, the gradient shows {expected}{hint}")

    def no_layers(fn):
        got = call(fn, [])
        if got != 1:
            raise CheckFailed(f"with no layers each output pixel is one input pixel (field 1), you return {got!r}")

    return run_checks("receptive_field", fn, [("stacks of convolutions and pools", stacks), ("no layers", no_layers)])


class _CountingModel(nn.Module):
    """A small MLP that records the batch size of every forward call."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        self.batch_sizes: list[int] = []

    def forward(self, x):
        self.batch_sizes.append(len(x))
        return self.net(x)


def _chunk_gradients(model, inputs, targets, sizes, weights):
    """Gradients of Σ weight_i · mean-loss(chunk_i) for the chunk ``sizes`` given."""
    reference = copy.deepcopy(model)
    reference.zero_grad()
    start = 0
    for size, weight in zip(sizes, weights):
        x, y = inputs[start:start + size], targets[start:start + size]
        (nn.functional.cross_entropy(reference.net(x), y) * weight).backward()
        start += size
    return [p.grad for p in reference.parameters()]


def _splits(n: int, m: int) -> list[list[int]]:
    """The chunk sizes of torch.chunk and of torch.tensor_split (both are right)."""
    return [[len(c) for c in torch.arange(n).chunk(m)], [len(c) for c in torch.arange(n).tensor_split(m)]]


def check_accumulate_gradients(fn):
    """``fn(model, loss_fn, inputs, targets, micro_batches)`` leaves the full-batch gradient in .grad."""
    def run(fn, n, micro_batches, seed):
        model = _CountingModel(seed)
        generator = torch.Generator().manual_seed(seed)
        inputs, targets = torch.randn(n, 6, generator=generator), torch.randint(0, 3, (n,), generator=generator)
        reference = copy.deepcopy(model)
        nn.functional.cross_entropy(reference.net(inputs), targets).backward()
        for p in model.parameters():  # stale gradients that must not leak into the result
            p.grad = torch.ones_like(p)
        call(fn, model, nn.CrossEntropyLoss(), inputs, targets, micro_batches)
        what = f"{n} samples in {micro_batches} micro-batch{'es' if micro_batches > 1 else ''}"
        largest = math.ceil(n / micro_batches)
        if sum(model.batch_sizes) != n or max(model.batch_sizes, default=0) > largest:
            raise CheckFailed(f"with {what} the model saw batches of {model.batch_sizes}: split the batch into "
                              f"{micro_batches} chunks (at most {largest} samples each), one forward pass per chunk")
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            if p.grad is None:
                raise CheckFailed(f"{name}.grad is None: call backward() on each micro-batch loss")
            if close(p.grad, q.grad, atol=1e-6):
                continue
            if close(p.grad - 1, q.grad, atol=1e-5):
                raise CheckFailed("stale gradients leaked in: zero the gradients before accumulating")
            for sizes in _splits(n, micro_batches):
                wrong = {
                    "you added up the micro-batch mean losses: weight each by its share of the batch, "
                    "len(chunk) / len(inputs)": [1.0] * len(sizes),
                    "dividing by the number of micro-batches is right only when all chunks are equal: weight "
                    "each chunk's mean loss by len(chunk) / len(inputs)": [1 / micro_batches] * len(sizes),
                }
                for hint, weights in wrong.items():
                    if len(set(sizes)) == 1 and "only when" in hint:
                        continue  # for equal chunks that is the right answer
                    candidate = _chunk_gradients(model, inputs, targets, sizes, weights)
                    if all(close(g.grad, c, atol=1e-6) for g, c in zip(model.parameters(), candidate)):
                        raise CheckFailed(f"with {what}: {hint}")
            expect_close(p.grad, q.grad, f"with {what}, the accumulated gradient of {name}", atol=1e-6)

    def equal_chunks(fn):
        run(fn, 24, 4, seed=0)

    def unequal_chunks(fn):
        run(fn, 25, 4, seed=1)
        run(fn, 10, 3, seed=2)

    def one_and_many(fn):
        run(fn, 7, 1, seed=3)
        run(fn, 6, 6, seed=4)

    return run_checks("accumulate_gradients", fn, [("24 samples in 4 micro-batches vs one batch", equal_chunks),
                                                   ("25 in 4 and 10 in 3: unequal chunks", unequal_chunks),
                                                   ("one micro-batch, and one sample each", one_and_many)])
