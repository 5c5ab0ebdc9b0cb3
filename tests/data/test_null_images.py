import torch

from captum_ext.data.null_images import null_images, replace_with_null_images
from captum_ext.fillers import ImageSpace


def test_null_images_are_seeded_in_range_and_varied():
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a, b = null_images(64, 32, generator=g()), null_images(64, 32, generator=g())
    assert torch.equal(a, b) and a.shape == (64, 3, 32, 32)
    assert a.min() >= 0 and a.max() <= 1
    spatial_std = a.std(dim=(2, 3)).mean(dim=1)
    assert (spatial_std == 0).any(), "flat colours expected"
    assert (spatial_std > 0.2).any(), "uniform noise expected"
    space = ImageSpace(0.5, 0.25)
    assert torch.allclose(
        null_images(4, 32, space, g()), space.to_inputs(null_images(4, 32, None, g()))
    )


def test_replace_with_null_images_clears_labels():
    images, labels = torch.full((50, 3, 32, 32), 7.0), torch.ones(50, 6)
    out, out_labels = replace_with_null_images(
        images, labels, 0.5, None, torch.Generator().manual_seed(1)
    )
    replaced = (out != 7.0).flatten(1).any(1)
    assert 10 < int(replaced.sum()) < 40
    assert (out_labels[replaced] == 0).all() and (out_labels[~replaced] == 1).all()
    same, same_labels = replace_with_null_images(images, labels, 0.0)
    assert torch.equal(same, images) and torch.equal(same_labels, labels)
