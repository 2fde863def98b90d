"""Checkers for chapter 07's exercises (SigLIP's loss, zero-shot class embeddings, median rank, mean average precision)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import (
    CheckFailed,
    as_double,
    call,
    close,
    expect_close,
    expect_shape,
    expect_type,
    is_real,
    run_checks,
)


def _pairs(batch_size: int, dim: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(batch_size, dim, generator=generator), dim=-1)
    # texts correlated with their images, so the diagonal matters and one-directional losses differ
    texts = F.normalize(images + 0.8 * torch.randn(batch_size, dim, generator=generator), dim=-1)
    return images, texts


def check_sigmoid_loss(fn):
    """``fn(image_features, text_features, logit_scale, logit_bias) -> scalar``: SigLIP's loss vs open_clip's SigLipLoss."""
    from open_clip.loss import SigLipLoss

    def against_open_clip(fn):
        for batch_size, dim, scale, bias in ((6, 16, 10.0, -10.0), (32, 64, 100.0, -5.0), (3, 8, 1.0, 0.5)):
            images, texts = _pairs(batch_size, dim, seed=batch_size)
            scale, bias = torch.tensor(scale), torch.tensor(bias)
            if batch_size == 3:
                images, texts, scale, bias = images.double(), texts.double(), scale.double(), bias.double()
            got = call(fn, images, texts, scale, bias)
            expect_type(got, torch.Tensor, "the loss")
            if got.numel() != 1:
                raise CheckFailed(f"return one number, got a tensor of shape {tuple(got.shape)}")
            got = as_double(got.reshape(()))
            expected = SigLipLoss()(images, texts, scale, bias).double()
            images, texts, scale, bias = images.double(), texts.double(), scale.double(), bias.double()
            if torch.isclose(got, expected, rtol=1e-5, atol=1e-5):
                continue
            logits = scale * images @ texts.T + bias
            labels = 2 * torch.eye(batch_size, dtype=torch.float64) - 1
            per_pair = -F.logsigmoid(labels * logits)
            if torch.isclose(got, per_pair.mean(), rtol=1e-5, atol=1e-5):
                raise CheckFailed("divided by N² (a mean over all cells); SigLIP sums the cells and divides by N")
            if torch.isclose(got, -F.logsigmoid(logits.diagonal()).sum() / batch_size, rtol=1e-5, atol=1e-5):
                raise CheckFailed("only the positive pairs count: the off-diagonal cells are negatives with label -1")
            if torch.isclose(got, -F.logsigmoid(labels * (scale * images @ texts.T)).sum() / batch_size,
                             rtol=1e-5, atol=1e-5):
                raise CheckFailed("the bias is missing: logits = logit_scale · cos + logit_bias")
            raise CheckFailed(f"loss {got.item():.5f} for N={batch_size}, scale {scale.item():g}, bias {bias.item():g}; "
                              f"open_clip's SigLipLoss gives {expected.item():.5f}")

    def gradient_flows(fn):
        images, texts = _pairs(8, 16, seed=1)
        inputs = [images, texts, torch.tensor(10.0), torch.tensor(-10.0)]
        mine = [x.clone().requires_grad_() for x in inputs]
        reference = [x.clone().requires_grad_() for x in inputs]
        loss = fn(*mine)
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            raise CheckFailed("the loss has no autograd graph: no gradient reaches the features (avoid .item(), "
                              "NumPy or torch.no_grad)")
        loss.sum().backward()
        SigLipLoss()(*reference).backward()
        for name, got, expected in zip(("image features", "text features", "logit_scale", "logit_bias"), mine, reference):
            if got.grad is None:
                raise CheckFailed(f"no gradient reaches {name}: the temperature and bias are learned too")
            expect_close(got.grad, expected.grad, f"the gradient w.r.t. {name}", atol=1e-5)

    return run_checks("sigmoid (SigLIP) loss", fn, [("compared with open_clip's SigLipLoss", against_open_clip),
                                                    ("gradients", gradient_flows)])


def check_class_embeddings(fn):
    """``fn(prompt_features C×T×d) -> C×d``: normalise each prompt, average over prompts, normalise again."""
    def against_reference(fn):
        generator = torch.Generator().manual_seed(0)
        # prompts of very different lengths, so every shortcut changes the answer
        prompts = torch.randn(5, 4, 8, generator=generator) * torch.linspace(0.2, 5, 4)[None, :, None]
        got = call(fn, prompts)
        expect_type(got, torch.Tensor, "the class embeddings")
        expect_shape(got, (5, 8), "the class embeddings (one per class)")
        expected = F.normalize(F.normalize(prompts, dim=-1).mean(1), dim=-1)
        if close(got, expected, atol=1e-5):
            return
        if close(got, F.normalize(prompts, dim=-1).mean(1), atol=1e-5):
            raise CheckFailed("the average of unit vectors is shorter than 1: normalise the mean again")
        if close(got, F.normalize(prompts.mean(1), dim=-1), atol=1e-5):
            raise CheckFailed("normalise each prompt embedding *before* averaging, or long prompts dominate")
        if not close(as_double(got).norm(dim=-1), torch.ones(5), atol=1e-4):
            raise CheckFailed(f"the class embeddings should have length 1, got lengths {got.norm(dim=-1).tolist()}")
        raise CheckFailed(f"differs from the reference by up to {(as_double(got) - expected.double()).abs().max():.4f} "
                          "(average over the prompts, dim=1)")

    def one_prompt(fn):
        prompts = torch.tensor([[[3.0, 4.0]], [[0.0, -2.0]]])
        expect_close(call(fn, prompts), torch.tensor([[0.6, 0.8], [0.0, -1.0]]), "one prompt per class")

    def other_sizes(fn):
        generator = torch.Generator().manual_seed(1)
        for shape, dtype in (((3, 7, 5), torch.float64), ((1, 2, 16), torch.float32), ((4, 3, 2), torch.float64)):
            prompts = torch.randn(shape, generator=generator, dtype=dtype) * torch.rand(shape[:2] + (1,),
                                                                                         generator=generator, dtype=dtype) * 4
            normalised = prompts / prompts.norm(dim=-1, keepdim=True)
            mean = normalised.mean(dim=1)
            expect_close(call(fn, prompts), mean / mean.norm(dim=-1, keepdim=True),
                         f"the class embeddings of {shape[0]} classes × {shape[1]} prompts × {shape[2]} ({dtype})")

    return run_checks("zero-shot class embeddings", fn, [("five classes, four prompts", against_reference),
                                                         ("one prompt per class", one_prompt),
                                                         ("other sizes and float64", other_sizes)])


def check_median_rank(fn):
    """``fn(similarity Q×G, relevant Q) -> float``: the median 1-based rank of each query's relevant item."""
    similarity = torch.tensor([[0.9, 0.1, 0.3, 0.2],   # relevant 0: rank 1
                               [0.8, 0.7, 0.1, 0.0],   # relevant 1: rank 2
                               [0.5, 0.6, 0.7, 0.1],   # relevant 3: rank 4
                               [0.2, 0.9, 0.3, 0.4],   # relevant 2: rank 3
                               [0.1, 0.2, 0.3, 0.95]])  # relevant 3: rank 1
    relevant = torch.tensor([0, 1, 3, 2, 3])

    def small_table(fn):
        got = call(fn, similarity, relevant)
        if isinstance(got, torch.Tensor):
            raise CheckFailed("return a Python number (use .item())")
        if not is_real(got):
            raise CheckFailed(f"return a number, got {type(got).__name__}")
        if math.isclose(got, 1.0):
            raise CheckFailed("median rank 1 here is 0-based: rank 1 must mean 'found first', so add 1")
        if math.isclose(got, 3.0):
            raise CheckFailed("ranks counted from the least similar item: sort by *decreasing* similarity")
        if not math.isclose(got, 2.0):
            raise CheckFailed(f"the ranks are 1, 2, 4, 3, 1, so the median is 2; got {got}")

    def gallery_axis(fn):
        generator = torch.Generator().manual_seed(0)
        wide = torch.randn(3, 10, generator=generator)
        got = call(fn, wide, wide.argmax(dim=1))
        if not math.isclose(got, 1.0):
            raise CheckFailed("rank the gallery items of each query (dim=1), not the queries of each item")

    def random(fn):
        generator = torch.Generator().manual_seed(1)
        for queries, items, dtype in ((7, 12, torch.float32), (1, 5, torch.float64), (9, 3, torch.float64),
                                      (5, 30, torch.float32)):
            table = torch.randn(queries, items, generator=generator, dtype=dtype)
            relevant = torch.randint(0, items, (queries,), generator=generator)
            ranks = sorted(1 + sum(v > row[r] for v in row) for row, r in zip(table.tolist(), relevant.tolist()))
            got = call(fn, table, relevant)
            if not is_real(got):
                raise CheckFailed(f"return a number, got {type(got).__name__}")
            if not math.isclose(got, ranks[len(ranks) // 2]):
                raise CheckFailed(f"for {queries} random queries over {items} items ({dtype}) the ranks are {ranks}, "
                                  f"median {ranks[len(ranks) // 2]}; you return {got}")

    return run_checks("median rank", fn, [("a 5 × 4 similarity table", small_table), ("3 queries, 10 items", gallery_axis),
                                           ("random tables (an odd number of queries)", random)])


def _torchmetrics_map(similarity: torch.Tensor, relevant: torch.Tensor) -> float:
    from torchmetrics.functional.retrieval import retrieval_average_precision

    # torchmetrics counts an item with a score ≤ 0 as never retrieved; AP depends only on the ranking, so shift
    # each row's scores above 0 first (cosine similarities are often negative)
    return float(torch.stack([retrieval_average_precision(scores.double() - scores.min().double() + 1, targets.bool())
                              for scores, targets in zip(similarity, relevant)]).mean())


def _expect_map(fn, similarity, relevant, what):
    got = call(fn, similarity, relevant)
    if isinstance(got, torch.Tensor):
        raise CheckFailed("return a Python number (use .item())")
    if not is_real(got):
        raise CheckFailed(f"return a number, got {type(got).__name__}")
    expected = _torchmetrics_map(similarity, relevant)
    if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
        return
    hint = ""
    if math.isclose(got, _torchmetrics_map(-similarity, relevant), rel_tol=1e-6, abs_tol=1e-9):
        hint = " — that is the ranking from the least similar item: sort by *decreasing* similarity"
    raise CheckFailed(f"{what}: your mAP is {got:.6g}, expected {expected:.6g}{hint}")


def check_mean_average_precision(fn):
    """``fn(similarity Q×G, relevant Q×G bool) -> float``: mean over queries of average precision (vs torchmetrics)."""
    def small_table(fn):
        similarity = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5],    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
                                   [0.1, 0.5, 0.3, 0.9, 0.2]])   # relevant at ranks 3 and 4: (1/3 + 2/4) / 2
        relevant = torch.tensor([[True, False, True, False, False], [False, False, True, False, True]])
        _expect_map(fn, similarity, relevant, "two queries with two relevant items each (mAP = 0.625)")
        _expect_map(fn, similarity[:1], relevant[:1], "the first query alone (AP = 0.8333)")

    def edge_cases(fn):
        one_relevant = torch.tensor([[0.2, 0.9, 0.4, 0.1]], dtype=torch.float64)
        _expect_map(fn, one_relevant, torch.tensor([[True, False, False, False]]),
                    "one relevant item at rank 3 (AP = 1/3, the reciprocal rank)")
        _expect_map(fn, one_relevant, torch.tensor([[True, True, True, True]]), "every item relevant (AP = 1)")
        _expect_map(fn, one_relevant, torch.tensor([[False, True, False, False]]), "the relevant item first (AP = 1)")

    def random(fn):
        generator = torch.Generator().manual_seed(0)
        for queries, items, dtype in ((7, 12, torch.float32), (1, 5, torch.float64), (9, 30, torch.float64),
                                      (5, 3, torch.float32)):
            similarity = torch.randn(queries, items, generator=generator, dtype=dtype)
            relevant = torch.rand(queries, items, generator=generator) < 0.3
            relevant[torch.arange(queries), torch.randint(0, items, (queries,), generator=generator)] = True
            _expect_map(fn, similarity, relevant, f"{queries} random queries over {items} items ({dtype})")

    return run_checks("mean average precision", fn, [("a 2 × 5 table", small_table),
                                                     ("one relevant item, all relevant", edge_cases),
                                                     ("random tables, float32 and float64", random)])
