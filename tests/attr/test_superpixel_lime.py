"""SuperpixelLime (LIME / LIME-G): exact recovery on a linear model, ridge, samples, bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_ext.attr import SuperpixelLime
from captum_ext.attr.superpixel_lime import check_feature_mask, slic_superpixels, weighted_ridge
from captum_ext.fillers import Constant, ImageSpace, Inpaint
from captum_ext.inpainters import OpenCVInpainter

BLOCKS = (torch.arange(16) // 4)[:, None] * 4 + (torch.arange(16) // 4)[None, :]  # 16 superpixels


class SuperpixelLinear(nn.Module):
    """Logit 0 = sum_k c_k * (mean of channel 0 over superpixel k): linear in presence."""

    def __init__(self, segments, coefficients):
        super().__init__()
        onehot = F.one_hot(segments.flatten(), coefficients.numel()).float()
        self.register_buffer("average", onehot / onehot.sum(dim=0))
        self.register_buffer("coefficients", coefficients)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        s = (x[:, 0].flatten(1) @ self.average) @ self.coefficients
        return torch.stack([s, -s, 0 * s], dim=1)


def test_recovers_the_coefficients_of_a_model_linear_in_superpixels():
    coefficients = torch.linspace(-1, 1, 16)
    model = SuperpixelLinear(BLOCKS, coefficients)
    x = torch.ones(2, 3, 16, 16)
    attr = SuperpixelLime(model, score="logit", alpha=1e-9).attribute(
        x, target=[0, 1], feature_mask=BLOCKS, n_samples=200, return_map=True
    )
    painted = coefficients[BLOCKS]
    assert torch.allclose(attr[0, 0], painted, atol=1e-4)
    assert torch.allclose(attr[1, 0], -painted, atol=1e-4)


def test_ridge_shrinkage_matches_the_closed_form_by_hand():
    # One superpixel, score = c * z: with weights w_i and alpha the slope is
    # c * S_zz / (S_zz + alpha), S_zz = sum_i w_i (z_i - zbar)^2.
    z = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]])
    w = torch.tensor([[1.0, 0.5, 0.25, 1.0, 2.0]])
    zbar = (w * z).sum() / w.sum()
    s_zz = (w * (z - zbar) ** 2).sum()
    beta = weighted_ridge(z[..., None], 2.0 * z, w, alpha=1.0)
    assert torch.allclose(beta, (2.0 * s_zz / (s_zz + 1.0)).double().view(1, 1))


def test_weighted_ridge_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 80, 6, generator=g) < 0.5).double()
    y, w = torch.randn(2, 80, generator=g).double(), torch.rand(2, 80, generator=g).double()
    ours = weighted_ridge(x, y, w, alpha=1.0)
    for i in range(2):
        ref = linear_model.Ridge(alpha=1.0).fit(
            x[i].numpy(), y[i].numpy(), sample_weight=w[i].numpy()
        )
        assert torch.allclose(ours[i], torch.from_numpy(ref.coef_), atol=1e-10)


def test_first_sample_is_the_image_and_samples_are_batched():
    model = SuperpixelLinear(BLOCKS, torch.ones(16))
    x = torch.rand(3, 3, 16, 16)
    SuperpixelLime(model, filler=Constant(0.0), score="logit").attribute(
        x, target=0, feature_mask=BLOCKS, n_samples=25, perturbations_per_eval=10
    )
    sizes = [b.shape[0] for b in model.inputs]
    assert sizes == [3, 30, 30, 15]  # target check, then N * 10, N * 10, N * 5
    assert torch.equal(model.inputs[1][:3], x)  # sample 0 of every example: all on
    # every perturbed pixel is either the image or the constant fill
    batch, image = model.inputs[2], x.repeat(10, 1, 1, 1)
    assert torch.all((batch == image) | (batch == 0))


def test_seed_determinism():
    model = SuperpixelLinear(BLOCKS, torch.randn(16, generator=torch.Generator().manual_seed(0)))
    lime = SuperpixelLime(model, score="logit")
    x = torch.rand(1, 3, 16, 16)
    a = lime.attribute(x, target=0, feature_mask=BLOCKS, n_samples=40, seed=1)
    b = lime.attribute(x, target=0, feature_mask=BLOCKS, n_samples=40, seed=1)
    c = lime.attribute(x, target=0, feature_mask=BLOCKS, n_samples=40, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_per_example_feature_masks_with_different_counts(tiny_model):
    masks = torch.stack([BLOCKS, (BLOCKS >= 8).long()])[:, None]
    out = SuperpixelLime(tiny_model).attribute(
        torch.rand(2, 3, 16, 16), target=1, feature_mask=masks, n_samples=30, return_map=True
    )
    assert out[0].unique().numel() <= 16 and out[1].unique().numel() <= 2


def test_slic_default_and_lime_g(tiny_model):
    space = ImageSpace(0.5, 0.25)
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    segments = slic_superpixels(pixels, n_segments=20)
    for seg in segments:
        labels = seg.unique()
        assert torch.equal(labels, torch.arange(labels.numel()))
    lime_g = SuperpixelLime(tiny_model, filler=Inpaint(OpenCVInpainter(), space), n_segments=20)
    assert lime_g.space is lime_g.filler.space
    assert torch.equal(lime_g.superpixels(space.to_inputs(pixels)), segments)
    out = lime_g.attribute(space.to_inputs(pixels), target=0, n_samples=12, return_map=True)
    assert out.shape == (2, 1, 32, 32)
    for n in range(2):  # constant on each superpixel
        for label in segments[n].unique():
            assert out[n][segments[n] == label].unique().numel() == 1


def test_feature_mask_validation():
    x = torch.zeros(2, 3, 4, 4)
    ok = torch.arange(16).view(4, 4) % 3
    assert check_feature_mask(ok, x).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="0..S-1"):
        check_feature_mask(ok * 2, x)  # label 1 missing
    with pytest.raises(ValueError, match="0..S-1"):
        check_feature_mask(ok - 1, x)
    with pytest.raises(ValueError, match="feature_mask"):
        check_feature_mask(torch.zeros(4, 5, dtype=torch.long), x)
    with pytest.raises(ValueError, match="feature_mask"):
        check_feature_mask(torch.zeros(3, 1, 4, 4, dtype=torch.long), x)
    with pytest.raises(TypeError, match="feature_mask"):
        check_feature_mask(ok.float(), x)
    with pytest.raises(TypeError, match="feature_mask"):
        check_feature_mask(ok.numpy(), x)
    with pytest.raises(ValueError, match="device"):
        check_feature_mask(ok.to("meta"), x)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_samples=1), ValueError, "n_samples"),
        (dict(n_samples=2.0), TypeError, "n_samples"),
        (dict(perturbations_per_eval=0), ValueError, "perturbations_per_eval"),
        (dict(feature_mask=BLOCKS[:8]), ValueError, "feature_mask"),
        (dict(target=7), ValueError, "target"),
        (dict(baselines=torch.zeros(5, 16, 16)), ValueError, "baselines"),
    ],
)
def test_bad_arguments(tiny_model, kwargs, error, match):
    kwargs = {"target": 0, "feature_mask": BLOCKS, "n_samples": 4, **kwargs}
    with pytest.raises(error, match=match):
        SuperpixelLime(tiny_model).attribute(torch.rand(1, 3, 16, 16), **kwargs)


def test_bad_constructor_arguments_and_pixels(tiny_model):
    with pytest.raises(ValueError, match="kernel_width"):
        SuperpixelLime(tiny_model, kernel_width=0)
    with pytest.raises(ValueError, match="alpha"):
        SuperpixelLime(tiny_model, alpha=-1)
    with pytest.raises(TypeError, match="space"):
        SuperpixelLime(tiny_model, space=(0.5, 0.25))


def test_without_space_slic_sees_each_image_rescaled_to_its_range(tiny_model):
    # Images spanning exactly [0, 1] are segmented as they are; any positive affine
    # change of an image (an ImageNet-style normalisation) gives the same superpixels.
    pixels = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    pixels[:, :, 0, 0], pixels[:, :, 0, 1] = 0.0, 1.0
    lime = SuperpixelLime(tiny_model, n_segments=12)
    segments = lime.superpixels(pixels)
    assert torch.equal(segments, slic_superpixels(pixels, n_segments=12))
    normalised = torch.cat([pixels[:1] * 4.0 - 2.1, pixels[1:] * 0.5 + 7.0])
    assert torch.equal(lime.superpixels(normalised), segments)
    out = lime.attribute(normalised, target=0, n_samples=6, return_map=True)
    for n in range(2):  # constant on each superpixel of the rescaled copy
        for label in segments[n].unique():
            assert out[n][segments[n] == label].unique().numel() == 1


def test_with_space_noisy_pixels_are_clipped_for_slic(tiny_model):
    space = ImageSpace.imagenet()
    pixels = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    noisy = pixels + 0.3 * torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(5))
    lime = SuperpixelLime(tiny_model, space=space, n_segments=12)
    assert torch.equal(
        lime.superpixels(space.to_inputs(noisy)),
        slic_superpixels(noisy.clamp(0, 1), n_segments=12),
    )


def test_return_input_shape_false_gives_the_coefficients():
    model = SuperpixelLinear(BLOCKS, torch.linspace(-1, 1, 16))
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    lime = SuperpixelLime(model, score="logit")
    kwargs = dict(target=0, feature_mask=BLOCKS, n_samples=60)
    weights = lime.attribute(x, return_input_shape=False, **kwargs)
    painted = lime.attribute(x, return_map=True, **kwargs)
    assert weights.shape == (2, 16)
    index = BLOCKS.flatten()[None].expand(2, -1)
    assert torch.allclose(painted[:, 0], weights.gather(1, index).view(2, 16, 16))
    # Lime's positional order; an example with fewer superpixels has its row padded with 0.
    masks = torch.stack([BLOCKS, BLOCKS // 8])[:, None]
    padded = lime.attribute(x, 0.0, 0, None, masks, 30, 10, False)
    assert (
        padded.shape == (2, 16) and torch.all(padded[1, 2:] == 0) and padded[1, :2].abs().sum() > 0
    )
