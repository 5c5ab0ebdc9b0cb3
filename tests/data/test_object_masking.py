import pytest
import torch

from captum_ext.data.object_masking import (
    default_dilation,
    dilate,
    keep_only,
    keep_random_objects,
    remove_objects,
)
from captum_ext.fillers import Blur


def _scene():
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + 1
    masks = torch.zeros(4, 3, 8, 8)
    masks[:, 0, 1:3, 1:3] = 1
    masks[:, 2, 5:7, 5:7] = 1
    labels = torch.tensor([[1.0, 0.0, 1.0]] * 4)
    return images, masks, labels


def test_dilate_and_default_radius():
    m = torch.zeros(1, 1, 7, 7)
    m[0, 0, 3, 3] = 1
    assert dilate(m, 2).sum() == 25 and torch.equal(dilate(m, 0), m)
    assert default_dilation(64) == 2 and default_dilation(224) == 7 and default_dilation(16) == 1


def test_keep_only_and_remove_objects():
    images, masks, _ = _scene()
    kept = keep_only(images, masks.amax(1, keepdim=True))
    assert torch.equal(kept[:, :, 1:3, 1:3], images[:, :, 1:3, 1:3])
    assert (kept[:, :, 0] == 0).all()
    removed = remove_objects(images, masks, radius=0)
    assert (removed[:, :, 1:3, 1:3] == 0).all() and torch.equal(removed[:, :, 0], images[:, :, 0])
    blurred = remove_objects(images, masks, Blur(1.0), radius=1)
    assert torch.equal(blurred[:, :, 4, 0], images[:, :, 4, 0])
    assert not torch.equal(blurred[:, :, 1:3, 1:3], images[:, :, 1:3, 1:3])
    with pytest.raises(TypeError, match="`filler` must be a captum_ext.fillers.Filler"):
        keep_only(images, masks[:, :1], filler=0.5)


def test_keep_random_objects_probability_bounds():
    images, masks, labels = _scene()
    same, same_labels = keep_random_objects(images, labels, masks, 0.0, 1)
    assert torch.equal(same, images) and torch.equal(same_labels, labels)
    out, out_labels = keep_random_objects(
        images, labels, masks, 1.0, 0, torch.Generator().manual_seed(0)
    )
    # Every image keeps a non-empty subset of its own classes, and only those pixels.
    assert (out_labels.sum(1) >= 1).all() and (out_labels <= labels).all()
    for i in range(4):
        keep = (masks[i] * out_labels[i, :, None, None]).amax(0) > 0
        assert torch.equal(out[i][:, keep], images[i][:, keep])
        assert (out[i][:, ~keep] == 0).all()


def test_keep_random_objects_draws_vary_with_seed():
    images, masks, labels = _scene()
    outs = {
        tuple(
            keep_random_objects(images, labels, masks, 1.0, 0, torch.Generator().manual_seed(s))[1]
            .flatten()
            .tolist()
        )
        for s in range(10)
    }
    assert len(outs) > 1
