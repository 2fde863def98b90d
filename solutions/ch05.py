"""Reference solutions for chapter 05's exercises (GANs and diffusion)."""

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE with logits: real samples towards 1, generated ones towards 0, the two batch means summed."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: mean of (‖∇ critic(x̂)‖₂ − 1)² over random points x̂ between each real and fake sample."""
    mix = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
    between = (mix * real + (1 - mix) * fake).requires_grad_(True)
    gradients, = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise, with each image's own timestep."""
    alpha_bar = alpha_bars.to(x0.device)[t].view(-1, *([1] * (x0.ndim - 1)))
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
