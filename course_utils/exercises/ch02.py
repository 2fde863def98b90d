"""Checkers for chapter 02's exercises (layer arithmetic, receptive field, gradient accumulation)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..checks import CheckFailed, expect_close, expect_type, run_checks

_CONV_CASES = [(28, 3, 1, 1, 1), (28, 5, 1, 0, 1), (32, 3, 2, 1, 1), (224, 7, 2, 3, 1), (17, 3, 2, 0, 1),
               (30, 3, 1, 2, 2), (28, 2, 2, 0, 1)]


def check_conv_output_size(fn):
    """``fn(size, kernel, stride, padding, dilation) -> int`` must match nn.Conv2d."""
    def against_pytorch(fn):
        for size, kernel, stride, padding, dilation in _CONV_CASES:
            layer = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
            expected = layer(torch.zeros(1, 1, size, size)).shape[-1]
            got = fn(size, kernel, stride, padding, dilation)
            expect_type(got, int, "the output size")
            if got != expected:
                raise CheckFailed(f"for size={size}, kernel={kernel}, stride={stride}, padding={padding}, "
                                  f"dilation={dilation} you return {got}, nn.Conv2d gives {expected}"
                                  + (" — round down (floor division)" if stride > 1 else ""))

    return run_checks("conv_output_size", fn, [("compared with nn.Conv2d", against_pytorch)])


def check_conv_parameter_count(fn):
    """``fn(in_channels, out_channels, kernel, bias, groups) -> int`` must match nn.Conv2d."""
    def against_pytorch(fn):
        for c_in, c_out, kernel, bias, groups in [(3, 64, 3, True, 1), (64, 128, 1, False, 1),
                                                  (256, 512, 3, False, 1), (32, 32, 3, False, 32),
                                                  (64, 128, 5, True, 4)]:
            layer = nn.Conv2d(c_in, c_out, kernel, bias=bias, groups=groups)
            expected = sum(p.numel() for p in layer.parameters())
            got = fn(c_in, c_out, kernel, bias, groups)
            if got != expected:
                hint = " — each filter sees only in_channels / groups channels" if groups > 1 else ""
                hint = hint or (" — don't forget one bias per output channel" if bias else "")
                raise CheckFailed(f"for Conv2d({c_in}, {c_out}, {kernel}, bias={bias}, groups={groups}) "
                                  f"you return {got}, PyTorch counts {expected}{hint}")

    return run_checks("conv_parameter_count", fn, [("compared with nn.Conv2d", against_pytorch)])


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
                       [(7, 2), (3, 2), (3, 1)]):
            expected = _receptive_field_by_gradient(layers)
            got = fn(list(layers))
            if got != expected:
                hint = " — a layer after a stride-s layer adds (k − 1)·s, not k − 1" if any(
                    s > 1 for _, s in layers[:-1]) else ""
                raise CheckFailed(f"for layers {layers} you return {got}, the gradient shows {expected}{hint}")

    return run_checks("receptive_field", fn, [("stacks of convolutions and pools", stacks)])


def check_accumulate_gradients(fn):
    """``fn(model, loss_fn, inputs, targets, micro_batches)`` leaves the full-batch gradient in .grad."""
    def equal_to_full_batch(fn):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        inputs, targets = torch.randn(24, 6), torch.randint(0, 3, (24,))
        reference = copy.deepcopy(model)
        nn.CrossEntropyLoss()(reference(inputs), targets).backward()
        for p in model.parameters():  # stale gradients that must not leak into the result
            p.grad = torch.ones_like(p)
        fn(model, nn.CrossEntropyLoss(), inputs, targets, 4)
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            if p.grad is None:
                raise CheckFailed(f"{name}.grad is None: call backward() on each micro-batch loss")
            ratio = (p.grad.norm() / q.grad.norm()).item()
            if abs(ratio - 4) < 0.05:
                raise CheckFailed("your gradient is 4× too large: divide each micro-batch loss by the "
                                  "number of micro-batches (the mean over the batch, not the sum)")
            if abs(ratio - 1) > 1e-3 and torch.allclose(p.grad - 1, q.grad, atol=1e-5):
                raise CheckFailed("stale gradients leaked in: zero the gradients before accumulating")
            expect_close(p.grad, q.grad, f"the accumulated gradient of {name}", atol=1e-6)

    return run_checks("accumulate_gradients", fn, [("4 micro-batches vs one batch", equal_to_full_batch)])
