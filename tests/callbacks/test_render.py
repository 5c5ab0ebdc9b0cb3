"""Renderings and the duck-typed image routes."""

import matplotlib
import torch
from PIL import Image

from captum_ext.data.shapes import shapes_space
from lightning_callbacks._image_sinks import log_image_batch
from lightning_callbacks._render import colorize, display_images, render


def test_colorize_uses_the_colormap_on_the_normalised_map():
    maps = torch.tensor([[[[-1.0, 0.0, 1.0, 2.0]]]])  # clamp at 0, divide by max 2
    jet = matplotlib.colormaps["jet"]
    expected = torch.tensor([jet(i)[:3] for i in (0, 0, 128, 255)], dtype=torch.float32)
    assert torch.allclose(colorize(maps)[0, :, 0].T, expected)


def test_display_images_inverts_the_normalisation():
    pixels = torch.rand(2, 3, 4, 4)
    space = shapes_space()
    assert torch.allclose(display_images(space.to_inputs(pixels), space), pixels, atol=1e-6)
    scaled = display_images(torch.tensor([[[[-2.0, 0.0], [2.0, 6.0]]]]))
    assert scaled.shape == (1, 3, 2, 2)
    assert torch.allclose(scaled[0, 0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))


def test_render_overlay_blends():
    out = render(torch.rand(2, 3, 4, 4), torch.rand(2, 1, 4, 4), alpha=0.25)
    assert set(out) == {"images", "masks", "overlays"}
    assert torch.allclose(out["overlays"], 0.75 * out["images"] + 0.25 * out["masks"])


def test_png_route_and_no_route(tmp_path):
    class DirectoryOnly:
        log_dir = str(tmp_path)

    batch = torch.zeros(3, 3, 4, 4)
    batch[:, 0] = 1.0  # red
    assert log_image_batch(DirectoryOnly(), "a/b", batch, step=7, nrow=2) == "png"
    image = Image.open(tmp_path / "images" / "a" / "b" / "step_0000007.png")
    assert image.size == (2 * 6 + 2, 2 * 6 + 2)  # make_grid: 2 per row, padding 2
    assert image.getpixel((3, 3)) == (255, 0, 0) and image.getpixel((0, 0)) == (255, 255, 255)
    assert log_image_batch(object(), "a/b", batch, step=7) == "none"
