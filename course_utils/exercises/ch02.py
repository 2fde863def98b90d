"""Checkers for chapter 02's exercises (gradient accumulation, transposed convolutions, BatchNorm folding).

Accumulated gradients are compared with one full-batch backward pass, on batches that do not split into
equal chunks; transposed-convolution sizes with what nn.ConvTranspose2d produces; a folded convolution
with the eval-mode conv → BatchNorm pair it replaces.
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


# --- transposed convolution output size -----------------------------------------------------------------

_TRANSPOSE_CASES = [(7, 3, 2, 1, 1, 1), (7, 3, 2, 1, 0, 1), (14, 4, 2, 1, 0, 1), (1, 1, 1, 0, 0, 1),
                    (5, 3, 1, 0, 0, 1), (5, 3, 1, 1, 0, 1), (4, 3, 3, 0, 2, 1), (6, 3, 2, 2, 1, 2),
                    (3, 5, 1, 2, 0, 3), (9, 2, 4, 1, 3, 1), (8, 7, 1, 3, 0, 1), (2, 3, 2, 0, 1, 2)]


def check_conv_transpose_output_size(fn):
    """``fn(size, kernel, stride, padding, output_padding, dilation) -> int`` must match nn.ConvTranspose2d."""
    def against_pytorch(fn):
        for size, kernel, stride, padding, output_padding, dilation in _TRANSPOSE_CASES:
            layer = nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding,
                                       output_padding=output_padding, dilation=dilation)
            expected = layer(torch.zeros(1, 1, size, size)).shape[-1]
            got = fn(size, kernel, stride, padding, output_padding, dilation)
            _expect_int(got, "the output size")
            if got != expected:
                raise CheckFailed(f"for size={size}, kernel={kernel}, stride={stride}, padding={padding}, "
                                  f"output_padding={output_padding}, dilation={dilation} you return {got}, "
                                  f"nn.ConvTranspose2d gives {expected}")

    def defaults(fn):
        for size, kernel in ((5, 3), (1, 4), (10, 1)):
            got = fn(size, kernel)
            _expect_int(got, "the output size")
            if got != size + kernel - 1:
                raise CheckFailed(f"with the defaults (stride 1, no padding, output_padding 0, dilation 1) "
                                  f"size={size}, kernel={kernel} gives {size + kernel - 1}, you return {got}")
        got = fn(7, 3, stride=2, padding=1)
        _expect_int(got, "the output size")
        if got != 13:
            raise CheckFailed(f"size=7, kernel=3, stride=2, padding=1 (keywords, output_padding and dilation "
                              f"left at their defaults) gives 13, you return {got}")

    def inverts_the_convolution(fn):
        for size, kernel, stride, padding in ((28, 3, 2, 1), (27, 3, 2, 1), (32, 4, 2, 1), (9, 5, 3, 2)):
            down = (size + 2 * padding - kernel) // stride + 1
            lost = (size + 2 * padding - kernel) % stride  # rows the convolution's floor dropped
            got = fn(down, kernel, stride, padding, lost, 1)
            _expect_int(got, "the output size")
            if got != size:
                raise CheckFailed(f"a stride-{stride} convolution maps {size} to {down}; the matching transposed "
                                  f"convolution with output_padding={lost} must give {size} back, you return {got}")

    return run_checks("conv_transpose_output_size", fn, [
        ("compared with nn.ConvTranspose2d", against_pytorch), ("default arguments", defaults),
        ("undoes a strided convolution's size", inverts_the_convolution)])


# --- folding BatchNorm into the convolution -------------------------------------------------------------

def _conv_bn(seed, in_channels=3, out_channels=4, kernel=3, bias=True, affine=True, dtype=torch.float32,
             eps=1e-5, **conv_options):
    """A conv → BatchNorm pair with random weights and running statistics (BatchNorm left in train mode)."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(in_channels, out_channels, kernel, bias=bias, **conv_options).to(dtype)
    bn = nn.BatchNorm2d(out_channels, eps=eps, affine=affine).to(dtype)
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.5)
        bn.running_var.uniform_(0.2, 3.0)
        if affine:
            bn.weight.normal_(1, 0.5)
            bn.bias.normal_(0, 0.5)
    return conv, bn


def _state(module: nn.Module) -> dict:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _expect_folded(fn, conv, bn, what: str, size: int = 9) -> None:
    conv_before, bn_before, bn_training = _state(conv), _state(bn), bn.training
    reference_conv, reference_bn = copy.deepcopy(conv), copy.deepcopy(bn).eval()
    fused = fn(conv, bn)
    for module, before, name in ((conv, conv_before, "conv"), (bn, bn_before, "bn")):
        after = module.state_dict()
        if any(not torch.equal(value, after[key]) for key, value in before.items()):
            raise CheckFailed(f"{what}: your function changed the {name} passed in; build a new convolution "
                              "(copy.deepcopy(conv), or nn.Conv2d with the same settings) and leave the inputs as they are")
    if bn.training != bn_training:
        raise CheckFailed(f"{what}: your function switched the BatchNorm passed in to eval mode; read its running "
                          "statistics instead of calling it, and leave it as it was")
    if not isinstance(fused, nn.Conv2d):
        raise CheckFailed(f"{what}: return one nn.Conv2d (the folded layer), got {type(fused).__name__}")
    if fused.bias is None:
        raise CheckFailed(f"{what}: your convolution has no bias, but BatchNorm's shift needs one")
    generator = torch.Generator().manual_seed(size)
    x = torch.randn(2, conv.in_channels, size, size + 2, generator=generator, dtype=conv.weight.dtype) * 2
    with torch.no_grad():
        expected = reference_bn(reference_conv(x))
        for mode in ("train", "eval"):
            fused.train(mode == "train")
            expect_close(fused(x), expected, f"{what}: your folded convolution's output in {mode} mode",
                         atol=1e-4 if x.dtype == torch.float32 else 1e-9)
    if not (isinstance(fused.weight, nn.Parameter) and isinstance(fused.bias, nn.Parameter)):
        raise CheckFailed(f"{what}: store the folded weight and bias as nn.Parameter, so they appear in the "
                          "layer's state_dict (and can be saved and fine-tuned)")


def check_fold_batchnorm(fn):
    """``fn(conv, bn) -> nn.Conv2d`` computing bn(conv(x)) with eval-mode BatchNorm; inputs left untouched."""
    def basic(fn):
        _expect_folded(fn, *_conv_bn(0, padding=1), "Conv2d(3, 4, 3, padding=1) → BatchNorm2d(4)")

    def without_conv_bias(fn):
        _expect_folded(fn, *_conv_bn(1, bias=False, padding=1), "a convolution with bias=False")

    def layer_settings(fn):
        _expect_folded(fn, *_conv_bn(2, 4, 6, 3, stride=2, dilation=2, groups=2), "stride 2, dilation 2, groups 2")
        _expect_folded(fn, *_conv_bn(3, 5, 2, 1), "a 1×1 convolution, 5 → 2 channels")

    def batchnorm_options(fn):
        _expect_folded(fn, *_conv_bn(4, affine=False, padding=1), "BatchNorm2d(affine=False) (no weight or bias)")
        _expect_folded(fn, *_conv_bn(5, eps=0.5, padding=1), "BatchNorm2d(eps=0.5)")
        conv, bn = _conv_bn(6, padding=1)
        bn.eval()
        _expect_folded(fn, conv, bn, "a BatchNorm already in eval mode")

    def float64(fn):
        _expect_folded(fn, *_conv_bn(7, 2, 3, 5, dtype=torch.float64, padding=2, bias=False), "float64 layers")

    return run_checks("fold_batchnorm", fn, [("conv → BN", basic), ("conv without bias", without_conv_bias),
                                             ("stride, dilation, groups and 1×1", layer_settings),
                                             ("affine=False, eps, eval mode", batchnorm_options),
                                             ("float64", float64)])
