"""Reference solutions for chapter 05's exercises (q_sample, a DDIM step with η, the kernel distance)."""

import torch


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise, with each image's own timestep."""
    alpha_bar = alpha_bars.to(x0.device)[t].view(-1, *([1] * (x0.ndim - 1)))
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, alpha_bars: torch.Tensor,
              eta: float, noise: torch.Tensor) -> torch.Tensor:
    """One DDIM update from timestep t to t_prev (< 0 means "to the clean image", ᾱ = 1), with η-scaled noise."""
    bar_t = alpha_bars[t]
    # Not alpha_bars[-1] for the last step: a negative index would wrap round to the noisiest level.
    bar_prev = alpha_bars[t_prev] if t_prev >= 0 else alpha_bars.new_ones(())
    x0_hat = (x_t - (1 - bar_t).sqrt() * eps) / bar_t.sqrt()
    # σ for η = 1 is DDPM's posterior standard deviation over the same (possibly skipped) step.
    sigma = eta * ((1 - bar_prev) / (1 - bar_t) * (1 - bar_t / bar_prev)).sqrt()
    # The noise direction keeps the total variance at 1 − ᾱ_prev: what σ adds fresh, it takes from ε̂.
    return bar_prev.sqrt() * x0_hat + (1 - bar_prev - sigma ** 2).sqrt() * eps + sigma * noise


def kernel_distance(features_a: torch.Tensor, features_b: torch.Tensor, degree: int = 3,
                    coef: float = 1.0) -> float:
    """Unbiased MMD² with the polynomial kernel k(x, y) = (x·y / d + coef)^degree: KID's estimate."""
    features_a, features_b = features_a.double(), features_b.double()
    dim = features_a.shape[1]
    k_aa = (features_a @ features_a.T / dim + coef) ** degree
    k_bb = (features_b @ features_b.T / dim + coef) ** degree
    k_ab = (features_a @ features_b.T / dim + coef) ** degree
    m, n = len(features_a), len(features_b)
    # Leaving out k(x, x) is what makes the estimate unbiased (it can dip below 0 for equal distributions).
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())
