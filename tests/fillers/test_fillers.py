import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from captum_ext.fillers import (
    Blur,
    Constant,
    GaussianNoise,
    ImageSpace,
    Inpaint,
    UniformNoise,
    remove,
)

SPACE = ImageSpace((0.5, 0.4, 0.3), (0.25, 0.2, 0.1))


def _holes(n=2, h=6, w=6):
    holes = torch.zeros(n, 1, h, w, dtype=torch.bool)
    holes[:, :, 1:4, 2:5] = True
    return holes


def test_image_space_round_trip_and_values():
    pixels = torch.rand(2, 3, 4, 4)
    inputs = SPACE.to_inputs(pixels)
    assert torch.allclose(inputs[:, 1], (pixels[:, 1] - 0.4) / 0.2)
    assert torch.allclose(SPACE.to_pixels(inputs), pixels, atol=1e-6)
    assert ImageSpace().to_inputs(pixels) is pixels
    with pytest.raises(ValueError, match="`std` must be positive"):
        ImageSpace(0.0, 0.0)
    with pytest.raises(ValueError, match="3 values but the images have 1 channels"):
        SPACE.to_pixels(torch.rand(1, 1, 2, 2))


def test_constant_fills_holes_only():
    x = torch.rand(2, 3, 6, 6)
    holes = _holes()
    out = Constant(0.0)(x, holes)
    assert torch.equal(out[holes.expand_as(x)], torch.zeros(2 * 3 * 9))
    assert torch.equal(out[~holes.expand_as(x)], x[~holes.expand_as(x)])


def test_constant_per_channel_and_pixel_space():
    x = torch.zeros(1, 3, 2, 2)
    r = Constant([1.0, 2.0, 3.0]).reference(x)
    assert r[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0]
    black = Constant(0.0, space=SPACE).reference(x)
    assert torch.allclose(black[0, :, 0, 0], torch.tensor([-2.0, -2.0, -3.0]))
    with pytest.raises(ValueError, match="2 entries but the inputs have 3 channels"):
        Constant([0.0, 1.0]).reference(x)


def test_blur_matches_scipy_gaussian_filter():
    x = torch.rand(1, 2, 20, 24, generator=torch.Generator().manual_seed(1))
    ours = Blur(2.0).reference(x)
    expected = np.stack(
        [gaussian_filter(x[0, c].numpy(), 2.0, mode="mirror", truncate=3.0) for c in range(2)]
    )
    assert np.allclose(ours[0].numpy(), expected, atol=1e-5)
    # Blur commutes with the per-channel normalisation.
    pixels = torch.rand(1, 3, 16, 16)
    via_inputs = SPACE.to_pixels(Blur(3.0).reference(SPACE.to_inputs(pixels)))
    assert torch.allclose(via_inputs, Blur(3.0).reference(pixels), atol=1e-5)


def test_blur_large_sigma_on_small_image():
    x = torch.rand(2, 3, 8, 8)
    out = Blur(10.0).reference(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="`sigma`"):
        Blur(-1.0)


def test_uniform_noise_seeded_and_in_pixel_range():
    x = torch.zeros(2, 3, 8, 8)
    filler = UniformNoise(SPACE)
    a = filler.reference(x, generator=torch.Generator().manual_seed(3))
    b = filler.reference(x, generator=torch.Generator().manual_seed(3))
    c = filler.reference(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    pixels = SPACE.to_pixels(a)
    assert pixels.min() >= 0 and pixels.max() <= 1 + 1e-6


def test_gaussian_noise_std_in_pixel_units():
    x = torch.zeros(1, 3, 128, 128)
    r = GaussianNoise(0.05, SPACE).reference(x, generator=torch.Generator().manual_seed(0))
    stds = SPACE.to_pixels(r).std(dim=(0, 2, 3))
    assert torch.allclose(stds, torch.full((3,), 0.05), rtol=0.05)
    means = r.mean(dim=(0, 2, 3))
    assert means.abs().max() < 0.05


def test_remove_operator():
    x, r = torch.full((1, 3, 1, 2), 4.0), torch.full((1, 3, 1, 2), 2.0)
    keep = torch.tensor([[[[1.0, 0.25]]]])
    assert remove(x, keep, r)[0, :, 0].tolist() == [[4.0, 2.5]] * 3


class MeanInpainter:
    """Test double: fills holes with each image's mean colour."""

    def __init__(self):
        self.seen = None

    def __call__(self, images, holes):
        self.seen = images
        return torch.where(holes, images.mean(dim=(2, 3), keepdim=True), images)


def test_inpaint_adapter_works_in_pixel_space():
    pixels = torch.rand(2, 3, 6, 6)
    inputs = SPACE.to_inputs(pixels)
    inpainter = MeanInpainter()
    out = Inpaint(inpainter, SPACE)(inputs, _holes())
    assert torch.allclose(inpainter.seen, pixels, atol=1e-6)
    expected = SPACE.to_inputs(inpainter(pixels, _holes()))
    assert torch.allclose(out, expected, atol=1e-5)
    keep = ~_holes().expand_as(inputs)
    assert torch.equal(out[keep], inputs[keep])


def test_inpaint_adapter_rejects_bad_inpainters_and_inputs():
    x = torch.rand(2, 3, 6, 6)
    with pytest.raises(ValueError, match="changed pixels outside the holes"):
        Inpaint(lambda images, holes: images * 0.5)(x, _holes())
    with pytest.raises(ValueError, match="returned"):
        Inpaint(lambda images, holes: images[:, :, :4])(x, _holes())
    with pytest.raises(ValueError, match=r"\[0, 1\] pixel space"):
        Inpaint(MeanInpainter())(x * 3, _holes())
    with pytest.raises(ValueError, match="needs the `holes`"):
        Inpaint(MeanInpainter()).reference(x)
    with pytest.raises(TypeError, match="callable"):
        Inpaint("telea")
    with pytest.raises(TypeError, match="bool"):
        Inpaint(MeanInpainter())(x, _holes().float())


def test_inpaint_adapter_fills_grey_images_as_three_equal_channels():
    from captum_ext.inpainters import OpenCVInpainter

    telea = OpenCVInpainter("telea")
    grey = torch.rand(2, 1, 6, 6)
    out = Inpaint(telea)(grey, _holes())
    assert out.shape == grey.shape
    keep = ~_holes()
    assert torch.equal(out[keep], grey[keep])
    rgb = telea(grey.expand(-1, 3, -1, -1), _holes())
    assert torch.equal(rgb[:, 0], rgb[:, 2])  # Telea fills equal channels alike
    assert torch.allclose(out, rgb[:, :1], atol=1e-6)
    assert not torch.allclose(out, grey)  # the holes were filled
    space = ImageSpace(0.5, 0.25)
    normalised = Inpaint(telea, space)(space.to_inputs(grey), _holes())
    assert torch.allclose(space.to_pixels(normalised), out, atol=1e-5)
    with pytest.raises(ValueError, match=r"or grey \(1-channel\) images, got shape \(2, 2, 6"):
        Inpaint(telea)(torch.rand(2, 2, 6, 6), _holes())


def test_inpaint_filler_with_an_inpainter_class_path_parses_from_a_config():
    # A training preset names its filler as class_path + init_args (jsonargparse).
    jsonargparse = pytest.importorskip("jsonargparse")
    from captum_ext.fillers.base import Filler
    from captum_ext.inpainters import OpenCVInpainter

    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--filler", type=Filler)
    config = parser.parse_object(
        {
            "filler": {
                "class_path": "captum_ext.fillers.Inpaint",
                "init_args": {
                    "inpainter": {
                        "class_path": "captum_ext.inpainters.OpenCVInpainter",
                        "init_args": {"method": "ns", "radius": 2},
                    },
                    "space": {
                        "class_path": "captum_ext.fillers.ImageSpace",
                        "init_args": {"mean": [0.5] * 3, "std": [0.25] * 3},
                    },
                },
            }
        }
    )
    filler = parser.instantiate(config).filler
    assert isinstance(filler, Inpaint) and isinstance(filler.inpainter, OpenCVInpainter)
    assert (filler.inpainter.method, filler.inpainter.radius) == ("ns", 2)
    assert filler.space.std.tolist() == [0.25] * 3
