"""Reference solutions for chapter 07's exercises (SigLIP's loss, zero-shot class embeddings, median rank, mAP)."""

import torch
import torch.nn.functional as F


def sigmoid_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                 logit_bias: torch.Tensor) -> torch.Tensor:
    """SigLIP: every (image, text) cell is its own binary problem, +1 on the diagonal and -1 elsewhere."""
    logits = logit_scale * image_features @ text_features.T + logit_bias
    labels = 2 * torch.eye(len(image_features), device=logits.device) - 1
    return -F.logsigmoid(labels * logits).sum() / len(image_features)


def class_embeddings(prompt_features: torch.Tensor) -> torch.Tensor:
    """C × T × d prompt embeddings → C × d: normalise each prompt, average per class, normalise again."""
    return F.normalize(F.normalize(prompt_features, dim=-1).mean(dim=1), dim=-1)


def median_rank(similarity: torch.Tensor, relevant: torch.Tensor) -> float:
    """Median over queries of the 1-based rank of the relevant gallery item (1 = found first)."""
    relevant_scores = similarity.gather(1, relevant[:, None])
    ranks = (similarity > relevant_scores).sum(dim=1) + 1
    return ranks.float().median().item()


def mean_average_precision(similarity: torch.Tensor, relevant: torch.Tensor) -> float:
    """Mean over queries of average precision: the precision at the rank of each relevant item, averaged."""
    order = similarity.argsort(descending=True)  # each row (the last dim), most similar first
    hits = relevant.gather(1, order).double()  # 1 where the item at that rank is relevant
    ranks = torch.arange(1, similarity.shape[1] + 1)
    precision_at_rank = hits.cumsum(dim=1) / ranks
    # only the ranks where a relevant item appears count, so every relevant item must be found for AP = 1
    average_precision = (precision_at_rank * hits).sum(dim=1) / hits.sum(dim=1)
    return average_precision.mean().item()
