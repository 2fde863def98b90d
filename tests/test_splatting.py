"""course_utils.splatting: the 2-D Gaussian-splatting renderer of chapter 09."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import splatting

RED, BLUE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)


def _round(count, sigma=2.0):
    return splatting.covariances(torch.zeros(count), torch.full((count, 2), sigma))


def _naive_render(means, covs, colours, opacities, height, width, background, max_alpha=0.99):
    """Pixel by pixel, Gaussian by Gaussian, in float64: the definition written as loops."""
    image = torch.zeros(height, width, colours.shape[1], dtype=torch.float64)
    inverse = torch.linalg.inv(covs.double())
    for y in range(height):
        for x in range(width):
            light, colour = 1.0, torch.zeros(colours.shape[1], dtype=torch.float64)
            for i in range(len(means)):
                offset = torch.tensor([x, y], dtype=torch.float64) - means[i].double()
                alpha = min(float(opacities[i]) * math.exp(-0.5 * float(offset @ inverse[i] @ offset)), max_alpha)
                colour += light * alpha * colours[i].double()
                light *= 1 - alpha
            image[y, x] = colour + light * torch.tensor(background, dtype=torch.float64)
    return image


def test_one_opaque_gaussian_renders_its_colour_at_its_mean_and_the_background_far_away():
    colour = torch.tensor([[0.2, 0.7, 0.4]])
    image = splatting.render(torch.tensor([[10.0, 7.0]]), _round(1), colour, torch.ones(1), 16, 24,
                             background=(1.0, 1.0, 1.0), max_alpha=1.0)
    assert image.shape == (16, 24, 3)
    torch.testing.assert_close(image[7, 10], colour[0])  # row y = 7, column x = 10
    torch.testing.assert_close(image[0, 23], torch.ones(3), atol=1e-6, rtol=0)
    capped = splatting.render(torch.tensor([[10.0, 7.0]]), _round(1), colour, torch.ones(1), 16, 24)
    torch.testing.assert_close(capped[7, 10], 0.99 * colour[0])  # α is capped at 0.99 by default (black behind)


def test_compositing_order_matters_the_first_gaussian_is_in_front():
    means, covs = torch.tensor([[5.0, 5.0], [5.0, 5.0]]), _round(2)
    colours, opacities = torch.tensor([RED, BLUE]), torch.tensor([1.0, 1.0])
    red_front = splatting.render(means, covs, colours, opacities, 11, 11, max_alpha=1.0)
    blue_front = splatting.render(means, covs, colours.flip(0), opacities, 11, 11, max_alpha=1.0)
    torch.testing.assert_close(red_front[5, 5], torch.tensor(RED))
    torch.testing.assert_close(blue_front[5, 5], torch.tensor(BLUE))


def test_half_transparent_layers_follow_the_over_operator():
    means, covs = torch.tensor([[3.0, 3.0], [3.0, 3.0]]), _round(2)
    image = splatting.render(means, covs, torch.tensor([RED, BLUE]), torch.tensor([0.5, 0.5]), 7, 7,
                             background=(0.0, 1.0, 0.0))
    # at the mean: 0.5 red, then 0.5 of the remaining half blue, and a quarter of the green background
    torch.testing.assert_close(image[3, 3], torch.tensor([0.5, 0.25, 0.25]))


def test_render_equals_the_definition_written_as_loops():
    generator = torch.Generator().manual_seed(0)
    count, height, width = 5, 6, 7
    means = torch.rand(count, 2, generator=generator) * torch.tensor([width, height])
    covs = splatting.covariances(torch.rand(count, generator=generator) * 3,
                                 0.8 + 2 * torch.rand(count, 2, generator=generator))
    colours, opacities = torch.rand(count, 3, generator=generator), torch.rand(count, generator=generator)
    fast = splatting.render(means.double(), covs.double(), colours.double(), opacities.double(), height, width,
                            background=(0.1, 0.2, 0.3))
    torch.testing.assert_close(fast, _naive_render(means, covs, colours, opacities, height, width, (0.1, 0.2, 0.3)))


def test_covariances_are_symmetric_positive_definite_with_the_scales_as_axes():
    angles, scales = torch.tensor([0.0, 0.3, 2.0]), torch.tensor([[1.0, 2.0], [0.5, 3.0], [4.0, 0.1]])
    covs = splatting.covariances(angles, scales)
    torch.testing.assert_close(covs, covs.transpose(-1, -2))
    eigenvalues = torch.linalg.eigvalsh(covs)
    torch.testing.assert_close(eigenvalues, (scales ** 2).sort(dim=1).values)
    # the first axis points along the angle
    direction = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    torch.testing.assert_close(torch.einsum("ni,nij,nj->n", direction, covs, direction), scales[:, 0] ** 2)


def test_gradients_reach_every_parameter_and_a_few_steps_fit_better():
    target = torch.zeros(12, 12, 3)
    target[3:9, 3:9] = torch.tensor([0.9, 0.6, 0.1])
    model = splatting.Gaussians2D(8, 12, 12, generator=torch.Generator().manual_seed(1))
    loss = F.mse_loss(model(), target)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, f"no gradient reaches {name}"
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        step_loss = F.mse_loss(model(), target)
        step_loss.backward()
        optimizer.step()
    assert F.mse_loss(model(), target).item() < 0.5 * loss.item()


def test_gaussians2d_starts_inside_the_image_grey_and_half_transparent():
    model = splatting.Gaussians2D(50, 20, 30, generator=torch.Generator().manual_seed(0))
    assert model().shape == (20, 30, 3)
    assert (model.means[:, 0] <= 29).all() and (model.means[:, 1] <= 19).all() and (model.means >= 0).all()
    torch.testing.assert_close(torch.sigmoid(model.opacity_logits), torch.full((50,), 0.5))
    with pytest.raises(ValueError, match="count, height and width"):
        splatting.Gaussians2D(0, 20, 30)


def test_projection_matches_sampled_points_through_a_pinhole():
    torch.manual_seed(0)
    mean = torch.tensor([[0.3, -0.2, 4.0]])
    axes = torch.tensor([[0.2, 0.05, 0.0], [0.0, 0.08, 0.03], [0.0, 0.0, 0.3]])
    cov = (axes @ axes.T)[None]
    projected_mean, projected_cov = splatting.project(mean, cov, focal=100.0, centre=(32.0, 32.0))
    torch.testing.assert_close(projected_mean[0], torch.tensor([100 * 0.3 / 4 + 32, 100 * -0.2 / 4 + 32]))
    samples = torch.distributions.MultivariateNormal(mean[0], cov[0]).sample((200_000,))
    on_image = 100.0 * samples[:, :2] / samples[:, 2:] + 32.0
    torch.testing.assert_close(on_image.T.cov(), projected_cov[0], rtol=0.05, atol=0.01)


def test_bad_inputs_name_what_was_expected():
    with pytest.raises(ValueError, match="means N × 2"):
        splatting.render(torch.zeros(2, 3), _round(2), torch.zeros(2, 3), torch.ones(2), 4, 4)
    with pytest.raises(ValueError, match="max_alpha"):
        splatting.render(torch.zeros(1, 2), _round(1), torch.zeros(1, 3), torch.ones(1), 4, 4, max_alpha=0)
    with pytest.raises(ValueError, match="N angles"):
        splatting.covariances(torch.zeros(2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="in front of the camera"):
        splatting.project(torch.tensor([[0.0, 0.0, -1.0]]), torch.eye(3)[None], 100.0, (0.0, 0.0))
