"""Saliency metric (Dabkowski & Gal) and mask saliency (Stalder eq. 9) by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from captum_ext.fillers import Constant
from captum_ext.metrics import crop_and_resize, mask_saliency, saliency_metric
from tests.metrics.helpers import MeanColour

RED, BLUE = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])


def two_colour_image(size: int = 4, corner: int = 2) -> torch.Tensor:
    """Blue image with a red ``corner`` x ``corner`` top-left block."""
    x = BLUE.view(1, 3, 1, 1).repeat(1, 1, size, size)
    x[:, :, :corner, :corner] = RED.view(1, 3, 1, 1)
    return x


def test_crop_and_resize_matches_interpolate_of_the_crop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 9, 7, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[0, 0, 7, 9], [2, 1, 5, 4], [6, 3, 7, 9]], dtype=torch.float64)
    out = crop_and_resize(x, boxes, (9, 7))
    for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        crop = x[i : i + 1, :, y0:y1, x0:x1]
        ref = F.interpolate(crop, size=(9, 7), mode="bilinear", align_corners=False)
        assert torch.allclose(out[i : i + 1], ref, atol=1e-12)


def test_saliency_metric_by_hand():
    x = two_colour_image()
    maps = torch.zeros(1, 4, 4)
    maps[0, :2, :2] = 1.0
    maps[0, 3, 3] = 0.4  # below alpha * max
    value = saliency_metric(MeanColour(), x, maps, target=0)
    # Box = the red block (area 4/16); the crop is all red: logits (1, 0, 0).
    expected = math.log(0.25) - math.log(math.e / (math.e + 2))
    assert value.item() == pytest.approx(expected, abs=1e-6)
    lower_alpha = saliency_metric(MeanColour(), x, maps, target=0, alpha=0.3)
    # Box = the whole image (0.4 >= 0.3): area 1, image mean (0.25, 0, 0.75).
    p = torch.tensor([0.25, 0.0, 0.75]).softmax(0)[0]
    assert lower_alpha.item() == pytest.approx(-math.log(p), abs=1e-6)


def test_saliency_metric_area_floor_and_empty_map():
    x = two_colour_image(size=8, corner=1)
    maps = torch.zeros(2, 8, 8)
    maps[0, 0, 0] = 1.0  # 1/64 < 0.05 of the image
    value = saliency_metric(MeanColour(), x.repeat(2, 1, 1, 1), maps, target=0, score="sigmoid")
    p_red = torch.sigmoid(torch.tensor(1.0))
    assert value[0].item() == pytest.approx(math.log(0.05) - math.log(p_red), abs=1e-6)
    # A map with nothing salient keeps the whole image: area 1.
    mean = torch.tensor([1 / 64, 0.0, 63 / 64])
    assert value[1].item() == pytest.approx(-math.log(torch.sigmoid(mean[0])), abs=1e-6)


def test_mask_saliency_by_hand():
    x = two_colour_image()
    half = torch.full((1, 1, 4, 4), 0.5)
    value = mask_saliency(MeanColour(), x, half, torch.tensor([[1, 0, 1]]))
    p = (0.5 * torch.tensor([0.25, 0.0, 0.75])).softmax(0)
    assert value.item() == pytest.approx(math.log(0.5) - math.log(p[0] + p[2]), abs=1e-6)
    # The empty mask: area floored at 0.05, all logits 0 -> p = 1/3 each.
    empty = mask_saliency(
        MeanColour(), x, torch.zeros(1, 4, 4), torch.tensor([[True, False, True]])
    )
    assert empty.item() == pytest.approx(math.log(0.05) - math.log(2 / 3), abs=1e-6)


def test_mask_saliency_single_target_equals_one_hot_labels_and_uses_filler():
    g = torch.Generator().manual_seed(1)
    x, masks = torch.rand(3, 3, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)
    a = mask_saliency(MeanColour(), x, masks, [0, 2, 1], batch_size=2)
    b = mask_saliency(MeanColour(), x, masks, torch.eye(3)[[0, 2, 1]])
    assert torch.allclose(a, b)
    ones = mask_saliency(MeanColour(), x, torch.zeros(3, 6, 6), 0, filler=Constant(1.0))
    p = torch.ones(3).softmax(0)[0]
    assert torch.allclose(ones, torch.full((3,), math.log(0.05) - math.log(p)))


def test_bad_input():
    x, maps = two_colour_image(), torch.rand(1, 4, 4)
    with pytest.raises(ValueError, match="`score` must be one of \\('softmax', 'sigmoid'\\)"):
        saliency_metric(MeanColour(), x, maps, 0, score="logit")
    with pytest.raises(ValueError, match="`alpha` must be in"):
        saliency_metric(MeanColour(), x, maps, 0, alpha=1.5)
    with pytest.raises(ValueError, match="`target` 3 is out of range"):
        saliency_metric(MeanColour(), x, maps, 3)
    with pytest.raises(ValueError, match="`attributions` must cover"):
        saliency_metric(MeanColour(), x, torch.rand(2, 4, 4), 0)
    with pytest.raises(ValueError, match="`masks` must have values in \\[0, 1\\]"):
        mask_saliency(MeanColour(), x, maps * 2, 0)
    with pytest.raises(ValueError, match="`masks` must cover"):
        mask_saliency(MeanColour(), x, torch.rand(1, 5, 5), 0)
    with pytest.raises(ValueError, match="`labels` has an example with an empty label set"):
        mask_saliency(MeanColour(), x, maps, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="`labels` has 2 classes but the model has 3"):
        mask_saliency(MeanColour(), x, maps, torch.ones(1, 2))
    with pytest.raises(ValueError, match="`target` 5 is out of range"):
        mask_saliency(MeanColour(), x, maps, 5)
    with pytest.raises(ValueError, match="`masks` contains NaN"):
        mask_saliency(MeanColour(), x, maps * float("nan"), 0)
    with pytest.raises(ValueError, match="same device"):
        mask_saliency(MeanColour(), x, maps.to("meta"), 0)
