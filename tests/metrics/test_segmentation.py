"""Soft accuracy, continuous IoU, MAE and the sanity rows of Stalder Table 2."""

import pytest
import torch

from captum_ext.metrics import (
    continuous_iou,
    mean_absolute_error,
    normalize_map,
    sanity_masks,
    sanity_rows,
    segmentation_scores,
    soft_accuracy,
)

MASK = torch.tensor([[[0.9, 0.2], [0.0, 0.6]]])
GT = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])


def test_scores_by_hand():
    # accuracy: mean(0.9, 0.2, 1.0, 0.4); IoU: (0.9 + 0.2) / (1 + 1 + 0 + 0.6);
    # MAE: mean(0.1, 0.8, 0, 0.6)
    assert soft_accuracy(MASK, GT).item() == pytest.approx(2.5 / 4)
    assert continuous_iou(MASK, GT).item() == pytest.approx(1.1 / 2.6)
    assert mean_absolute_error(MASK, GT).item() == pytest.approx(1.5 / 4)
    scores = segmentation_scores(MASK.unsqueeze(1), GT.bool())
    assert scores["iou"].item() == pytest.approx(1.1 / 2.6)


def test_valid_pixels_only():
    valid = torch.tensor([[[True, False], [True, True]]])
    assert soft_accuracy(MASK, GT, valid).item() == pytest.approx(2.3 / 3)
    assert continuous_iou(MASK, GT, valid).item() == pytest.approx(0.9 / 1.6)
    assert mean_absolute_error(MASK, GT, valid).item() == pytest.approx(0.7 / 3)


def test_sanity_rows_by_hand():
    # 3 foreground pixels of 8: F = 3/8, B = 5/8.
    gt = torch.zeros(2, 2, 4)
    gt[:, 0, :3] = 1
    rows = sanity_rows(gt)
    assert list(rows) == ["0", "0.5", "1", "G.T."]
    expected = {
        "0": (5 / 8, 0.0, 3 / 8),
        "0.5": (0.5, 0.5 * 3 / (3 + 0.5 * 5), 0.5),
        "1": (3 / 8, 3 / 8, 5 / 8),
        "G.T.": (1.0, 1.0, 0.0),
    }
    for name, (acc, iou, mae) in expected.items():
        assert torch.allclose(rows[name]["accuracy"], torch.full((2,), acc)), name
        assert torch.allclose(rows[name]["iou"], torch.full((2,), iou)), name
        assert torch.allclose(rows[name]["mae"], torch.full((2,), mae)), name
    assert torch.equal(sanity_masks(gt)["G.T."], gt.unsqueeze(1))


def test_empty_ground_truth_and_empty_mask_agree():
    assert continuous_iou(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)).item() == 1.0
    assert continuous_iou(torch.ones(1, 3, 3), torch.zeros(1, 3, 3)).item() == 0.0


def test_normalized_maps_feed_the_scores():
    maps = torch.tensor([[[[-2.0, 4.0], [1.0, 2.0]]]])
    norm = normalize_map(maps)
    assert torch.allclose(norm, torch.tensor([[[[0.0, 1.0], [0.25, 0.5]]]]))
    assert normalize_map(-torch.ones(1, 3, 2, 2)).abs().sum() == 0
    assert continuous_iou(norm, GT).item() == pytest.approx(1.0 / 2.75)


def test_bad_input():
    with pytest.raises(ValueError, match="`masks` must have values in \\[0, 1\\]"):
        soft_accuracy(MASK * 2, GT)
    with pytest.raises(ValueError, match="`ground_truth` must have the shape of `masks`"):
        continuous_iou(MASK, GT[:, :1])
    with pytest.raises(TypeError, match="`masks` must be a floating-point"):
        mean_absolute_error(MASK.long(), GT)
    with pytest.raises(ValueError, match="`masks` contains NaN"):
        mean_absolute_error(MASK * float("nan"), GT)
    with pytest.raises(ValueError, match="`masks` must have shape \\(N, H, W\\)"):
        soft_accuracy(MASK.view(1, 1, 1, 2, 2), GT)
    with pytest.raises(TypeError, match="`valid` must be a bool tensor"):
        soft_accuracy(MASK, GT, valid=torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="`valid` must have shape"):
        soft_accuracy(MASK, GT, valid=torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="`valid` marks no pixel"):
        continuous_iou(MASK, GT, valid=torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="same device"):
        soft_accuracy(MASK, GT.to("meta"))
