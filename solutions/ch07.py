"""Reference solutions for chapter 07's exercises (SigLIP's sigmoid loss, zero-shot class embeddings, median rank)."""

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
