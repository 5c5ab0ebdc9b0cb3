"""OpenCV inpainters: protocol, local crops against full-image inpainting, bad input."""

import cv2
import numpy as np
import pytest
import torch

from captum_ext.data.shapes_world import generate_shapes
from captum_ext.fillers import ImageSpace, Inpaint
from captum_ext.inpainters import OpenCVInpainter
from captum_ext.inpainters.opencv import hole_boxes


def _scenes(n=4, size=64, seed=0):
    return generate_shapes(n, size, seed=seed).images.float() / 255


def _box_holes(n, size, boxes):
    holes = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        holes[i, 0, y0:y1, x0:x1] = True
    return holes


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_pixels_outside_holes_unchanged_bit_for_bit(method):
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    holes = _box_holes(3, 32, [(4, 12, 4, 12), (0, 32, 10, 20), (20, 31, 25, 32)])
    out = OpenCVInpainter(method)(images, holes)
    keep = ~holes.expand_as(images)
    assert out.dtype == images.dtype and out.shape == images.shape
    assert torch.equal(out[keep], images[keep])
    assert not torch.equal(out[~keep], images[~keep])


@pytest.mark.parametrize("method, grey_levels", [("telea", 3), ("ns", 0)])
def test_constant_background_is_filled_with_its_colour(method, grey_levels):
    colour = torch.tensor([51, 102, 204]) / 255
    images = colour.view(1, 3, 1, 1).expand(2, 3, 24, 24).clone()
    holes = _box_holes(2, 24, [(5, 15, 5, 15), (0, 24, 0, 6)])
    out = OpenCVInpainter(method)(images, holes)
    # Telea's gradient term is off by a few grey levels even on a flat image.
    assert (out - images).abs().max() <= grey_levels / 255 + 1e-6


def test_matches_one_direct_cv2_call_per_image():
    images = _scenes(2, 48)
    holes = _box_holes(2, 48, [(10, 30, 12, 40), (0, 20, 0, 20)])
    out = OpenCVInpainter("telea", local=False)(images, holes)
    for i in range(2):
        u8 = (images[i] * 255).round().byte().permute(1, 2, 0).numpy().copy()
        expected = cv2.inpaint(u8, holes[i, 0].byte().numpy(), 3, cv2.INPAINT_TELEA)
        got = (out[i] * 255).round().byte().permute(1, 2, 0).numpy()
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_local_inpainting_matches_full_image_within_one_grey_level(method):
    """Stated tolerance: 1/255 inside the holes (it is bit-identical in practice)."""
    rng = np.random.default_rng(0)
    size, n = 64, 12
    boxes = []
    for _ in range(n):
        k = int(rng.integers(3, 30))
        y, x = int(rng.integers(0, size - k + 1)), int(rng.integers(0, size - k + 1))
        boxes.append((y, y + k, x, x + k))
    images, holes = _scenes(n, size, seed=3), _box_holes(n, size, boxes)
    local = OpenCVInpainter(method, local=True)(images, holes)
    full = OpenCVInpainter(method, local=False)(images, holes)
    assert (local - full).abs().max() <= 1 / 255 + 1e-6


def test_local_mode_crops_small_holes_only(monkeypatch):
    shapes = []
    real = cv2.inpaint

    def spy(image, mask, radius, flag):
        shapes.append(image.shape[:2])
        return real(image, mask, radius, flag)

    monkeypatch.setattr(cv2, "inpaint", spy)
    images = _scenes(3, 64)
    holes = _box_holes(3, 64, [(20, 29, 30, 39), (0, 0, 0, 0), (0, 60, 0, 60)])
    OpenCVInpainter("telea", radius=3)(images, holes)
    # small hole: 9 x 9 + margin 2 * 3 + 2 = 8 on each side; empty hole: no call; big: full
    assert shapes == [(25, 25), (64, 64)]


def test_empty_holes_return_the_images():
    images = torch.rand(2, 3, 16, 16)
    holes = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    assert torch.equal(OpenCVInpainter()(images, holes), images)


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_an_image_that_is_all_hole_is_filled_with_grey_not_returned(method):
    # cv2.inpaint alone hands such an image back unchanged: the removed pixels leak.
    images = torch.rand(2, 3, 16, 16)
    holes = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    holes[0] = True
    holes[1, :, :4] = True
    filled = OpenCVInpainter(method)(images, holes)
    assert torch.equal(filled[0], torch.full_like(images[0], 128 / 255))
    assert (filled[1, :, :4] - images[1, :, :4]).abs().mean() > 0.1
    assert torch.equal(filled[1, :, 4:], images[1, :, 4:])


def test_hole_boxes():
    holes = _box_holes(2, 8, [(1, 3, 2, 7), (0, 0, 0, 0)])
    assert hole_boxes(holes).tolist() == [[1, 3, 2, 7], [0, 0, 0, 0]]


def test_plugs_into_inpaint_filler_in_input_space():
    space = ImageSpace(0.5, 0.25)
    pixels = _scenes(2, 32)
    inputs = space.to_inputs(pixels)
    holes = _box_holes(2, 32, [(8, 16, 8, 16), (0, 10, 20, 30)])
    filled = Inpaint(OpenCVInpainter("ns"), space)(inputs, holes)
    expected = space.to_inputs(OpenCVInpainter("ns")(pixels, holes))
    assert torch.allclose(filled, expected, atol=1e-5)
    assert torch.equal(filled[~holes.expand_as(inputs)], inputs[~holes.expand_as(inputs)])


@pytest.mark.parametrize(
    "images, holes, error, match",
    [
        (
            torch.rand(1, 3, 8, 8) * 2,
            torch.zeros(1, 1, 8, 8, dtype=torch.bool),
            ValueError,
            "images",
        ),
        (
            torch.rand(1, 3, 8, 8) - 0.5,
            torch.zeros(1, 1, 8, 8, dtype=torch.bool),
            ValueError,
            r"\[0, 1\]",
        ),
        (
            torch.rand(1, 1, 8, 8),
            torch.zeros(1, 1, 8, 8, dtype=torch.bool),
            ValueError,
            r"3 \(RGB\) channels .* Inpaint filler also takes grey images",
        ),
        (torch.rand(3, 8, 8), torch.zeros(1, 1, 8, 8, dtype=torch.bool), ValueError, "images"),
        (
            torch.randint(0, 2, (1, 3, 8, 8)),
            torch.zeros(1, 1, 8, 8, dtype=torch.bool),
            TypeError,
            "images",
        ),
        (
            torch.full((1, 3, 8, 8), float("nan")),
            torch.zeros(1, 1, 8, 8, dtype=torch.bool),
            ValueError,
            "NaN",
        ),
        (torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), TypeError, "holes"),
        (torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 7, dtype=torch.bool), ValueError, "holes"),
        (torch.rand(1, 3, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.bool), ValueError, "holes"),
    ],
)
def test_bad_input(images, holes, error, match):
    with pytest.raises(error, match=match):
        OpenCVInpainter()(images, holes)


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        OpenCVInpainter("lama")
    with pytest.raises(ValueError, match="radius"):
        OpenCVInpainter(radius=0)
    with pytest.raises(ValueError, match="max_local_fraction"):
        OpenCVInpainter(max_local_fraction=0)
