"""Reference solutions for chapter 07's exercises (CLIP's contrastive loss, zero-shot class embeddings, recall@k)."""

import torch
import torch.nn.functional as F


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: cross-entropy of each image over the texts and of each text over the images."""
    logits_per_image = logit_scale * image_features @ text_features.T
    targets = torch.arange(len(image_features), device=image_features.device)
    return (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_image.T, targets)) / 2


def class_embeddings(prompt_features: torch.Tensor) -> torch.Tensor:
    """C × T × d prompt embeddings → C × d: normalise each prompt, average per class, normalise again."""
    return F.normalize(F.normalize(prompt_features, dim=-1).mean(dim=1), dim=-1)


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Fraction of queries whose relevant gallery item is among their k most similar."""
    top_k = similarity.topk(k, dim=1).indices
    return (top_k == relevant[:, None]).any(dim=1).float().mean().item()
