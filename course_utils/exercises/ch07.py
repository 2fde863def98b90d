"""Checkers for chapter 07's exercises (CLIP's contrastive loss, zero-shot class embeddings, recall@k)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import CheckFailed, expect_close, expect_shape, expect_type, run_checks


def _pairs(batch_size: int, dim: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(batch_size, dim, generator=generator), dim=-1)
    # texts correlated with their images, so the diagonal matters and one-directional losses differ
    texts = F.normalize(images + 0.8 * torch.randn(batch_size, dim, generator=generator), dim=-1)
    return images, texts


def check_contrastive_loss(fn):
    """``fn(image_features, text_features, logit_scale) -> scalar``: CLIP's loss, compared with open_clip's ClipLoss."""
    from open_clip.loss import ClipLoss

    def against_open_clip(fn):
        for batch_size, dim, scale in ((6, 16, 1 / 0.07), (32, 64, 100.0), (3, 8, 1.0)):
            images, texts = _pairs(batch_size, dim, seed=batch_size)
            scale = torch.tensor(scale)
            got = fn(images.clone(), texts.clone(), scale.clone())
            expect_type(got, torch.Tensor, "the loss")
            if got.numel() != 1:
                raise CheckFailed(f"return one number (the mean loss), got a tensor of shape {tuple(got.shape)}")
            expected = ClipLoss()(images, texts, scale)
            if torch.isclose(got.reshape(()), expected, atol=1e-5):
                continue
            targets = torch.arange(batch_size)
            logits = scale * images @ texts.T
            image_side, text_side = F.cross_entropy(logits, targets), F.cross_entropy(logits.T, targets)
            if any(torch.isclose(got.reshape(()), one_side, atol=1e-5) for one_side in (image_side, text_side)):
                raise CheckFailed("only one direction: average the image→text and the text→image cross-entropies")
            if torch.isclose(got.reshape(()), image_side + text_side, atol=1e-5):
                raise CheckFailed("the two cross-entropies are summed; CLIP averages them (divide by 2)")
            unscaled = (F.cross_entropy(images @ texts.T, targets) + F.cross_entropy(texts @ images.T, targets)) / 2
            if scale != 1 and torch.isclose(got.reshape(()), unscaled, atol=1e-5):
                raise CheckFailed("the similarities are not multiplied by logit_scale")
            exp_scaled = (F.cross_entropy(scale.exp() * images @ texts.T, targets)
                          + F.cross_entropy(scale.exp() * texts @ images.T, targets)) / 2
            if torch.isclose(got.reshape(()), exp_scaled, atol=1e-5):
                raise CheckFailed("logit_scale is already s = exp(log scale): multiply by it, do not exponentiate again")
            raise CheckFailed(f"loss {got.item():.5f} for N={batch_size}, s={scale.item():.2f}; "
                              f"open_clip's ClipLoss gives {expected.item():.5f}")

    def gradient_flows(fn):
        images, texts = _pairs(8, 16, seed=1)
        images.requires_grad_()
        fn(images, texts, torch.tensor(1 / 0.07)).backward()
        if images.grad is None or images.grad.abs().sum() == 0:
            raise CheckFailed("no gradient reaches the image features (avoid .item(), numpy or torch.no_grad)")

    return run_checks("contrastive loss", fn, [("compared with open_clip's ClipLoss", against_open_clip),
                                               ("gradients", gradient_flows)])


def check_class_embeddings(fn):
    """``fn(prompt_features C×T×d) -> C×d``: normalise each prompt, average over prompts, normalise again."""
    def against_reference(fn):
        generator = torch.Generator().manual_seed(0)
        # prompts of very different lengths, so every shortcut changes the answer
        prompts = torch.randn(5, 4, 8, generator=generator) * torch.linspace(0.2, 5, 4)[None, :, None]
        got = fn(prompts.clone())
        expect_type(got, torch.Tensor, "the class embeddings")
        expect_shape(got, (5, 8), "the class embeddings (one per class)")
        expected = F.normalize(F.normalize(prompts, dim=-1).mean(1), dim=-1)
        if torch.allclose(got, expected, atol=1e-5):
            return
        if torch.allclose(got, F.normalize(prompts, dim=-1).mean(1), atol=1e-5):
            raise CheckFailed("the average of unit vectors is shorter than 1: normalise the mean again")
        if torch.allclose(got, F.normalize(prompts.mean(1), dim=-1), atol=1e-5):
            raise CheckFailed("normalise each prompt embedding *before* averaging, or long prompts dominate")
        if not torch.allclose(got.norm(dim=-1), torch.ones(5), atol=1e-4):
            raise CheckFailed(f"the class embeddings should have length 1, got lengths {got.norm(dim=-1).tolist()}")
        raise CheckFailed(f"differs from the reference by up to {(got - expected).abs().max():.4f} "
                          "(average over the prompts, dim=1)")

    def one_prompt(fn):
        prompts = torch.tensor([[[3.0, 4.0]], [[0.0, -2.0]]])
        expect_close(fn(prompts.clone()), torch.tensor([[0.6, 0.8], [0.0, -1.0]]), "one prompt per class")

    return run_checks("zero-shot class embeddings", fn, [("five classes, four prompts", against_reference),
                                                         ("one prompt per class", one_prompt)])


def check_recall_at_k(fn):
    """``fn(similarity Q×G, relevant Q, k) -> float``: fraction of queries whose relevant item is in the top k."""
    similarity = torch.tensor([[0.9, 0.1, 0.3, 0.2],   # relevant 0: rank 1
                               [0.8, 0.7, 0.1, 0.0],   # relevant 1: rank 2
                               [0.5, 0.6, 0.7, 0.1],   # relevant 3: rank 4
                               [0.2, 0.9, 0.3, 0.4],   # relevant 2: rank 3
                               [0.1, 0.2, 0.3, 0.95]])  # relevant 3: rank 1
    relevant = torch.tensor([0, 1, 3, 2, 3])
    expected = {1: 0.4, 2: 0.6, 3: 0.8, 4: 1.0}

    def small_table(fn):
        for k, value in expected.items():
            got = fn(similarity.clone(), relevant.clone(), k)
            if isinstance(got, torch.Tensor):
                raise CheckFailed("return a Python float (use .item())")
            if not isinstance(got, float):
                raise CheckFailed(f"return a float, got {type(got).__name__}")
            if math.isclose(got, 100 * value):
                raise CheckFailed("return a fraction between 0 and 1, not a percentage")
            if not math.isclose(got, value, abs_tol=1e-6):
                if k == 1 and math.isclose(got, 0.2):
                    raise CheckFailed("recall@1 is 0.2: are you taking the *least* similar items (sort descending)?")
                raise CheckFailed(f"recall@{k} should be {value}, got {got}")

    def gallery_axis(fn):
        generator = torch.Generator().manual_seed(0)
        wide = torch.randn(3, 10, generator=generator)
        relevant_wide = wide.argmax(dim=1)
        got = fn(wide, relevant_wide, 1)
        if not math.isclose(got, 1.0):
            raise CheckFailed("rank the gallery items of each query (dim=1), not the queries of each item")

    return run_checks("recall@k", fn, [("a 5 × 4 similarity table", small_table), ("3 queries, 10 items", gallery_axis)])
