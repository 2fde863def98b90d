"""Reference solutions for chapter 02's exercises (convolutional networks)."""

import copy

import torch
from torch import nn


def accumulate_gradients(model, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, micro_batches: int) -> None:
    """Leave in .grad the gradient of the mean loss over the whole batch, computed in micro-batches."""
    model.zero_grad()
    for chunk_inputs, chunk_targets in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        # Each chunk's mean loss is weighted by its share of the batch, so the sum equals the full mean.
        weight = len(chunk_targets) / len(targets)
        (loss_fn(model(chunk_inputs), chunk_targets) * weight).backward()


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis of nn.ConvTranspose2d: the inverse of the convolution's formula."""
    # A transposed convolution spreads each input pixel over a kernel footprint `stride` apart; padding
    # trims from both ends, and output_padding adds back the rows a strided convolution's floor lost.
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution that computes bn(conv(x)) with BatchNorm in eval mode (its running statistics)."""
    # Eval-mode BatchNorm is a per-channel affine map y = scale·z + shift, so it folds into each output
    # channel's filter and bias; the layer's stride, padding, dilation and groups stay as they are.
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    scale = gamma / torch.sqrt(bn.running_var + bn.eps)
    shift = beta - bn.running_mean * scale
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = copy.deepcopy(conv)  # a copy: the caller's layers stay untouched
    fused.weight = nn.Parameter((conv.weight * scale[:, None, None, None]).detach())
    fused.bias = nn.Parameter((bias * scale + shift).detach())
    return fused
