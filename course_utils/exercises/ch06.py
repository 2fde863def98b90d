"""Checkers for chapter 06's exercises (scaled dot-product attention, resampling position embeddings,
Swin's relative position index), each against the library function that does the same (F.sdpa, timm)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import CheckFailed, as_double, call, close, expect_close, expect_shape, expect_type, run_checks


def _attention_inputs(seed: int = 0, length: int = 5, dim: int = 8):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, length, dim, generator=generator) * 2 for _ in range(3)]


def _reference_weights(q, k, mask=None, scale=None):
    scores = q @ k.transpose(-2, -1) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def check_attention(fn):
    """``fn(q, k, v, mask=None) -> (output, weights)``: softmax(QKᵀ/√d)V; ``mask`` is boolean, True = may attend."""
    def unmasked(fn):
        q, k, v = _attention_inputs()
        got = call(fn, q, k, v)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailed("return a pair (output, weights)")
        output, weights = got
        expect_type(output, torch.Tensor, "the output")
        expect_shape(weights, (2, 3, 5, 5), "the weights (batch × heads × queries × keys)")
        expect_shape(output, (2, 3, 5, 8), "the output")
        expected = _reference_weights(q, k)
        if not close(weights, expected, atol=1e-5):
            if close(weights, _reference_weights(q, k, scale=1.0), atol=1e-5):
                raise CheckFailed("the scores are not scaled: divide QKᵀ by √d_k (here √8)")
            if close(weights, _reference_weights(q, k, scale=1 / q.shape[-1]), atol=1e-5):
                raise CheckFailed("the scores are divided by d_k; divide by √d_k")
            if close(weights.sum(-2), torch.ones(2, 3, 5), atol=1e-5):
                raise CheckFailed("each *column* sums to 1: take the softmax over the keys (dim=-1)")
            raise CheckFailed(f"the weights differ from softmax(QKᵀ/√d) by up to "
                              f"{(as_double(weights) - expected).abs().max():.4f}")
        library = F.scaled_dot_product_attention(q, k, v)
        expect_close(output, library, "the output vs F.scaled_dot_product_attention")

    def masked(fn):
        q, k, v = _attention_inputs(seed=1)
        causal = torch.ones(5, 5, dtype=torch.bool).tril()
        padding = torch.tensor([True, True, True, False, False]).expand(5, 5)
        for name, mask in (("a padding mask (last two keys hidden)", padding), ("a causal mask", causal)):
            output, weights = call(fn, q, k, v, mask=mask)
            weights = weights.nan_to_num(0.0)  # an inverted causal mask hides a whole row: NaN, not a crash
            hidden = weights.masked_select(~mask.expand_as(weights))
            if not hidden.abs().max() <= 1e-6:  # NaN fails too
                shown = weights.masked_select(mask.expand_as(weights))
                if shown.abs().max() < 1e-6:
                    raise CheckFailed(f"with {name} the weights are 0 where the mask is True: "
                                      "True means 'may attend' (as in F.scaled_dot_product_attention)")
                raise CheckFailed(f"with {name} the masked positions get weight {float(hidden.abs().max()):.3f}, "
                                  "expected 0: fill their scores with -inf before the softmax")
            expect_close(weights.sum(-1), torch.ones(2, 3, 5), f"row sums of the weights with {name}")
            expect_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                         f"the output with {name} vs F.scaled_dot_product_attention")

    def other_shapes(fn):
        generator = torch.Generator().manual_seed(2)
        for q_shape, k_len, v_dim, dtype, mask in (
                ((2, 4, 8), 6, 3, torch.float64, None),  # no head axis, 4 queries, 6 keys, values of width 3
                ((1, 2, 3, 16), 7, 5, torch.float32, torch.rand(1, 1, 3, 7, generator=generator) < 0.7),
                ((2, 1, 2, 4), 3, 4, torch.float64, torch.tensor([[[[True, False, True], [False, True, True]]],
                                                                  [[[True, True, False], [True, False, False]]]]))):
            q = torch.randn(q_shape, generator=generator, dtype=dtype) * 2
            k = torch.randn(*q_shape[:-2], k_len, q_shape[-1], generator=generator, dtype=dtype) * 2
            v = torch.randn(*q_shape[:-2], k_len, v_dim, generator=generator, dtype=dtype)
            if mask is not None:
                mask[..., 0] = True  # every query may attend to at least one key
            got = call(fn, q, k, v) if mask is None else call(fn, q, k, v, mask=mask)
            if not isinstance(got, tuple) or len(got) != 2:
                raise CheckFailed("return a pair (output, weights)")
            what = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} ({dtype})" + (
                ", with a mask" if mask is not None else "")
            weights = _reference_weights(q.double(), k.double(), mask)
            expect_close(got[1], weights, f"the weights for {what}")
            expect_close(got[0], weights @ v.double(), f"the output for {what} (scale by √d of the keys, "
                         "q.shape[-1], not of the values)")

    return run_checks("attention", fn, [("no mask", unmasked), ("with masks", masked),
                                        ("other shapes, dtypes and broadcast masks", other_shapes)])


def _expect_resampled(fn, pos_embed, new_grid, prefix, what: str) -> torch.Tensor:
    from timm.layers import resample_abs_pos_embed

    args = (pos_embed, new_grid) if prefix is None else (pos_embed, new_grid, prefix)
    got = call(fn, *args)
    prefix = 1 if prefix is None else prefix
    expected = resample_abs_pos_embed(pos_embed.detach(), list(new_grid), num_prefix_tokens=prefix,
                                      interpolation="bicubic", antialias=False)
    expect_type(got, torch.Tensor, f"the resampled embedding {what}")
    shape = (1, prefix + new_grid[0] * new_grid[1], pos_embed.shape[-1])
    if tuple(got.shape) != shape:
        raise CheckFailed(f"{what}: the resampled embedding has shape {tuple(got.shape)}, expected {shape} "
                          f"({prefix} prefix token(s) + {new_grid[0]}×{new_grid[1]} grid positions)")
    if not close(got[:, :prefix], pos_embed[:, :prefix], atol=0, rtol=0):
        raise CheckFailed(f"{what}: the {prefix} prefix token(s) ([CLS], …) must come first and stay unchanged — "
                          "they have no place on the grid")
    if not close(got, expected, atol=1e-5):
        grid = pos_embed[:, prefix:]
        side = math.isqrt(grid.shape[1])
        raw = F.interpolate(grid.reshape(1, -1, side, side).float(), size=new_grid, mode="bicubic", align_corners=False)
        hint = ""
        if raw.numel() == got[:, prefix:].numel() and close(got[:, prefix:].reshape(raw.shape), raw, atol=1e-5):
            hint = (" — reshaping 1 × g² × D straight to 1 × D × g × g mixes up tokens and dimensions: make the grid "
                    "1 × g × g × D first, then move D to the channels")
        elif new_grid[0] != new_grid[1] and close(
                got, resample_abs_pos_embed(pos_embed.detach(), [new_grid[1], new_grid[0]], num_prefix_tokens=prefix,
                                            antialias=False).reshape(got.shape), atol=1e-5):
            hint = " — height and width are swapped: new_grid is (rows, columns)"
        try:
            expect_close(got, expected, f"the resampled embedding {what} (vs timm's resample_abs_pos_embed)", atol=1e-5)
        except CheckFailed as failure:
            raise CheckFailed(f"{failure}{hint}") from None
    return got


def check_resample_pos_embed(fn):
    """``fn(pos_embed, new_grid, num_prefix_tokens=1)``: bicubic resize of a ViT's grid of position embeddings."""
    def against_timm(fn):
        generator = torch.Generator().manual_seed(0)
        _expect_resampled(fn, torch.randn(1, 1 + 16, 8, generator=generator), (6, 6), None,
                          "for a 4×4 grid with [CLS] → 6×6")
        _expect_resampled(fn, torch.randn(1, 2 + 49, 6, generator=generator), (3, 5), 2,
                          "for a 7×7 grid with 2 prefix tokens (DeiT's [CLS] and [DIST]) → 3×5")
        _expect_resampled(fn, torch.randn(1, 9, 4, generator=generator, dtype=torch.float64), (5, 2), 0,
                          "for a 3×3 grid without prefix tokens, float64 → 5×2")
        same = torch.randn(1, 1 + 25, 5, generator=generator)
        got = _expect_resampled(fn, same, (5, 5), 1, "for a 5×5 grid resized to 5×5")
        expect_close(got, same, "a 5×5 grid resized to 5×5 (bicubic at the same size changes nothing)", atol=1e-5)

    def smooth_grid(fn):
        rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
        ramp = torch.stack([rows, cols, rows * cols], -1).reshape(1, 16, 3)  # dimension 0 = row, 1 = column
        cls = torch.full((1, 1, 3), -7.0)
        _expect_resampled(fn, torch.cat([cls, ramp], 1), (8, 2), None, "for row and column ramps on a 4×4 grid → 8×2")

    def gradients(fn):
        generator = torch.Generator().manual_seed(1)
        pos_embed = torch.randn(1, 1 + 9, 4, generator=generator).requires_grad_(True)
        out = fn(pos_embed, (4, 6))
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise CheckFailed("the result has no autograd graph: the resampled embedding is fine-tuned as a parameter, "
                              "so build it from pos_embed with differentiable operations")
        weights = torch.randn(out.shape, generator=generator)
        (out * weights).sum().backward()
        from timm.layers import resample_abs_pos_embed

        reference = pos_embed.detach().clone().requires_grad_(True)
        (resample_abs_pos_embed(reference, [4, 6], antialias=False) * weights).sum().backward()
        expect_close(pos_embed.grad, reference.grad, "the gradient w.r.t. pos_embed", atol=1e-5)

    return run_checks("resample_pos_embed", fn, [("vs timm's resample_abs_pos_embed", against_timm),
                                                 ("a smooth grid, non-square target", smooth_grid),
                                                 ("gradients reach pos_embed", gradients)])


def check_relative_position_index(fn):
    """``fn(window_h, window_w) -> (Wh·Ww) × (Wh·Ww)``: Swin's index into the (2Wh−1)(2Ww−1) bias table."""
    def against_timm(fn):
        from timm.models.swin_transformer import get_relative_position_index

        for window_h, window_w in ((1, 1), (2, 2), (2, 3), (3, 2), (4, 1), (7, 7)):
            got = call(fn, window_h, window_w)
            if not isinstance(got, (torch.Tensor, np.ndarray)):
                raise CheckFailed(f"return a tensor (or NumPy array) of indices, got {type(got).__name__}")
            got = torch.as_tensor(got)
            what = f"the index for a {window_h}×{window_w} window"
            tokens = window_h * window_w
            expect_shape(got, (tokens, tokens), what)
            if got.dtype.is_floating_point or got.dtype == torch.bool or got.dtype.is_complex:
                raise CheckFailed(f"{what}: indices must be integers (they index the bias table), got {got.dtype}")
            expected = get_relative_position_index(window_h, window_w)
            if torch.equal(got.long(), expected):
                continue
            hint = ""
            if torch.equal(got.long(), expected.T):
                hint = " — the offset is token i's position minus token j's, not j − i"
            elif got.min() < 0:
                hint = " — shift each offset by (window − 1) so that indices start at 0"
            elif got.max() >= (2 * window_h - 1) * (2 * window_w - 1):
                hint = f" — indices must stay below the table size (2·{window_h} − 1)(2·{window_w} − 1)"
            mismatch = (got.long() != expected).nonzero()[0].tolist()
            raise CheckFailed(f"{what}: entry {tuple(mismatch)} is {int(got[tuple(mismatch)])}, expected "
                              f"{int(expected[tuple(mismatch)])}{hint}")

    return run_checks("relative_position_index", fn, [("windows 1×1 … 7×7, square and not, vs timm", against_timm)])

