"""Checkers for chapter 06's exercises (scaled dot-product attention, patchify, a pre-norm transformer block)."""

from __future__ import annotations

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


def check_patchify(fn):
    """``fn(images, patch_size) -> N × (H/p · W/p) × (p·p·C)``, patches in raster order, values in (p1 p2 c) order."""
    def against_einops(fn):
        from einops import rearrange

        generator = torch.Generator().manual_seed(0)
        images = torch.randn(2, 3, 8, 12, generator=generator)
        got = call(fn, images, 4)
        expect_type(got, torch.Tensor, "the patches")
        expect_shape(got, (2, 6, 48), "the patches of a 2×3×8×12 batch with p = 4 (6 patches of 4·4·3 values)")
        expected = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=4, p2=4)
        if torch.equal(got, expected):
            return
        channels_first = rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=4, p2=4)
        column_major = rearrange(images, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=4, p2=4)
        if torch.equal(got, channels_first):
            raise CheckFailed("each patch is flattened channel-first (c p1 p2); ViT's convention, which the "
                              "Conv2d weights map onto in this chapter, is (p1 p2 c): permute the channels last")
        if torch.equal(got, column_major):
            raise CheckFailed("the patches go column by column; number them row by row (raster order)")
        if torch.equal(got, images.reshape(2, 3, -1, 16).permute(0, 2, 3, 1).reshape(2, 6, 48)):
            raise CheckFailed("a plain reshape takes 16 consecutive pixels of a row, not a 4×4 square: "
                              "split H and W into (h, p) and (w, p) first, then permute")
        raise CheckFailed("the patches differ from rearrange(x, 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)')")

    def other_sizes(fn):
        from einops import rearrange

        generator = torch.Generator().manual_seed(1)
        for shape, p, dtype in (((1, 1, 6, 6), 3, torch.float32), ((3, 4, 4, 8), 2, torch.float64),
                                ((2, 2, 5, 5), 5, torch.float32), ((1, 3, 2, 3), 1, torch.float32)):
            images = torch.randn(shape, generator=generator, dtype=dtype)
            expected = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
            expect_close(call(fn, images, p), expected, f"the patches of a {'×'.join(map(str, shape))} batch with "
                         f"p = {p}", atol=0)

    def bad_size(fn):
        for shape, side in (((1, 1, 8, 10), "10 is not a multiple of 4"), ((1, 2, 6, 8), "6 is not a multiple of 4")):
            try:
                fn(torch.zeros(shape), 4)
            except (ValueError, AssertionError):
                continue
            except Exception as error:  # noqa: BLE001 - any other error type is still a fail with a reason
                raise CheckFailed(f"a {shape[2]}×{shape[3]} image with p = 4 raised {type(error).__name__}; raise a "
                                  "ValueError that says the size is not divisible") from None
            raise CheckFailed(f"a {shape[2]}×{shape[3]} image cannot be cut into 4×4 patches ({side}): "
                              "raise a ValueError instead of returning")

    return run_checks("patchify", fn, [("vs einops", against_einops), ("other sizes, p = 1 and p = H", other_sizes),
                                       ("size not divisible by p", bad_size)])


def _forbidden_forward(*args, **kwargs):
    raise CheckFailed("you called block(tokens) itself; compute the output from block.norm1, block.attn, "
                      "block.norm2 and block.mlp")


def _random_block(dim: int, heads: int, seed: int, dtype=torch.float32):
    from ..vit import TransformerBlock

    torch.manual_seed(seed)
    block = TransformerBlock(dim=dim, num_heads=heads).eval().to(dtype)
    for parameter in block.parameters():  # larger weights, so that a wrong wiring shows clearly
        torch.nn.init.normal_(parameter, std=0.5)
    return block, torch.randn(2, 5, dim, dtype=dtype)


def check_pre_norm_block(fn):
    """``fn(tokens, block) -> tokens``: x + attn(norm1(x)), then x + mlp(norm2(x)), with ``block``'s own layers."""
    def against_block(fn):
        block, tokens = _random_block(16, 4, seed=0)
        with torch.no_grad():
            expected = block(tokens)
            block.forward = _forbidden_forward  # the exercise is to wire the layers, not to call the block
            got = call(fn, tokens, block)
        expect_type(got, torch.Tensor, "the block's output")
        expect_shape(got, (2, 5, 16), "the block's output")
        if close(got, expected, atol=1e-4):
            return
        with torch.no_grad():
            after_attention = block.norm1(tokens + block.attn(tokens))
            post_norm = block.norm2(after_attention + block.mlp(after_attention))
            no_residual = block.mlp(block.norm2(block.attn(block.norm1(tokens))))
            middle = tokens + block.attn(block.norm1(tokens))
            one_norm = middle + block.mlp(block.norm1(middle))
            attention_only = middle
        for candidate, hint in (
                (post_norm, ("this is the original post-norm block (norm after each residual add); ViT normalises "
                             "*before* each sub-layer: x + attn(norm1(x))")),
                (no_residual, "the residual connections are missing: add each sub-layer's output back to its input"),
                (one_norm, "norm1 is used twice; the MLP gets its own LayerNorm, norm2"),
                (attention_only, "the MLP half is missing: x = x + mlp(norm2(x))")):
            if close(got, candidate, atol=1e-4):
                raise CheckFailed(hint)
        raise CheckFailed(f"your output differs from TransformerBlock's by up to "
                          f"{(as_double(got) - expected.double()).abs().max():.4f}")

    def other_blocks(fn):
        for dim, heads, seed, dtype in ((8, 2, 1, torch.float64), (12, 3, 2, torch.float32)):
            block, tokens = _random_block(dim, heads, seed, dtype)
            with torch.no_grad():
                expected = block(tokens)
                block.forward = _forbidden_forward
                got = call(fn, tokens, block)
            expect_close(got, expected, f"the output of a {dtype} block of width {dim} with {heads} heads", atol=1e-4)

    return run_checks("pre_norm_block", fn, [("vs course_utils.vit.TransformerBlock", against_block),
                                             ("other widths and float64", other_blocks)])
