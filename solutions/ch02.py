"""Reference solutions for chapter 02's exercises (convolutional networks)."""

import torch


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Spatial output size of a convolution (or pooling) layer along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_parameter_count(in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                         groups: int = 1) -> int:
    """Weights (+ biases) of an nn.Conv2d with a square kernel."""
    return kernel * kernel * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Receptive field (pixels per side) of a stack of (kernel, stride) layers, input to output."""
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def accumulate_gradients(model, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, micro_batches: int) -> None:
    """Leave in .grad the gradient of the mean loss over the whole batch, computed in micro-batches."""
    model.zero_grad()
    for chunk_inputs, chunk_targets in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        # Each chunk's mean loss is weighted by its share of the batch, so the sum equals the full mean.
        weight = len(chunk_targets) / len(targets)
        (loss_fn(model(chunk_inputs), chunk_targets) * weight).backward()
