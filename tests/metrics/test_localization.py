"""Pointing game, threshold boxes and localisation error by hand."""

import math

import pytest
import torch

from captum_ext.metrics import (
    PointingAccuracy,
    box_iou_pairs,
    choose_alpha,
    localization_error,
    pointing_accuracy,
    pointing_game,
    scaled_tolerance,
    threshold_boxes,
)


def peak_maps(points, size=10):
    maps = torch.zeros(len(points), 1, size, size)
    for i, (r, c) in enumerate(points):
        maps[i, 0, r, c] = 1.0
    return maps


def test_pointing_game_with_masks_strict_at_the_tolerance():
    gt = torch.zeros(3, 10, 10)
    gt[:, 6:, 6:] = 1
    maps = peak_maps([(7, 7), (3, 6), (3, 3)])
    # Distances to the nearest object pixel (6, 6): 0, 3, sqrt(18) = 4.24. TorchRay counts
    # a hit when the distance is strictly below the tolerance.
    assert pointing_game(maps, masks=gt, tolerance=1).tolist() == [True, False, False]
    assert pointing_game(maps, masks=gt, tolerance=3).tolist() == [True, False, False]
    assert pointing_game(maps, masks=gt, tolerance=3.01).tolist() == [True, True, False]
    assert pointing_game(maps, masks=gt, tolerance=4.25).tolist() == [True, True, True]


def test_default_tolerance_is_torchrays_15px_scaled_to_the_map():
    # 64 x 64: round(15 * 64 / 224) = 4 px. A peak 4 px from the object misses (not < 4),
    # one at distance sqrt(9 + 4) = 3.6 hits; 4.29 px unrounded would have taken both.
    gt = torch.zeros(2, 64, 64)
    gt[:, 40:, 40:] = 1
    maps = torch.zeros(2, 64, 64)
    maps[0, 36, 40] = 1  # distance 4 to (40, 40)
    maps[1, 37, 38] = 1  # distance sqrt(13)
    assert pointing_game(maps, masks=gt).tolist() == [False, True]
    assert pointing_game(maps, masks=gt, tolerance=4.3).tolist() == [True, True]
    # At 224 x 224 the default is TorchRay's 15 px: 15 misses, sqrt(14**2 + 5**2) = 14.9 hits.
    gt = torch.zeros(2, 224, 224)
    gt[:, 100:, 100:] = 1
    maps = torch.zeros(2, 224, 224)
    maps[0, 85, 100] = 1
    maps[1, 86, 95] = 1
    assert pointing_game(maps, masks=gt).tolist() == [False, True]


def test_pointing_game_with_boxes_and_labels():
    boxes = torch.tensor([[[6.0, 6.0, 10.0, 10.0], [0.0, 0.0, 2.0, 2.0]]]).repeat(3, 1, 1)
    labels = torch.tensor([[1, 2]]).repeat(3, 1)
    maps = peak_maps([(7, 7), (3, 6), (1, 1)])
    hits = pointing_game(maps, boxes=boxes, box_labels=labels, target=1, tolerance=3.5)
    assert hits.tolist() == [True, True, False]  # (1, 1) is in the box of class 2
    hits = pointing_game(maps, boxes=boxes, box_labels=labels, target=1, tolerance=3)
    assert hits.tolist() == [True, False, False]  # distance exactly 3: a miss
    hits = pointing_game(maps, boxes=boxes, box_labels=labels, target=[1, 1, 2], tolerance=1)
    assert hits.tolist() == [True, False, True]
    # Same answer as the equivalent mask: box (6, 6, 10, 10) covers pixels 6..9.
    gt = torch.zeros(3, 10, 10)
    gt[:, 6:, 6:] = 1
    for tol in (1, 2.9, 3, 3.1, 4.2, 4.3, None):
        assert torch.equal(
            pointing_game(maps, boxes=boxes[:, :1], tolerance=tol),
            pointing_game(maps, masks=gt, tolerance=tol),
        )


def test_pointing_uses_the_first_maximum_and_channel_mean():
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, :, 1, 1] = 1.0
    maps[0, 0, 2, 2] = 2.0  # channel mean 2/3 < 1
    gt = torch.zeros(1, 4, 4)
    gt[0, 1, 1] = 1
    assert pointing_game(maps, masks=gt, tolerance=1).item()
    ties = torch.zeros(1, 4, 4)
    ties[0, 0, 3] = ties[0, 3, 0] = 1.0  # equal maxima: torch.argmax takes the first, (0, 3)
    on_first, on_second = torch.zeros(2, 4, 4).unbind()
    on_first[0, 3], on_second[3, 0] = 1, 1
    assert pointing_game(ties, masks=on_first[None], tolerance=1).item()
    assert not pointing_game(ties, masks=on_second[None], tolerance=1).item()


def test_scaled_tolerance():
    assert scaled_tolerance(224) == 15 and isinstance(scaled_tolerance(224), int)
    assert scaled_tolerance(64) == 4  # 4.29 rounded
    assert scaled_tolerance(32) == 2  # 2.14
    assert scaled_tolerance(112) == 8  # 7.5 rounded half up
    assert scaled_tolerance((96, 200)) == 6  # the shorter side: 6.43
    assert scaled_tolerance(4) == 1  # at least the peak pixel itself
    assert scaled_tolerance(448, tolerance=10) == 20
    with pytest.raises(ValueError, match="`image_size` must be >= 1"):
        scaled_tolerance(0)
    with pytest.raises(TypeError, match="`image_size` must be an int"):
        scaled_tolerance(64.0)
    with pytest.raises(ValueError, match="`image_size` must be an int or"):
        scaled_tolerance((64, 64, 3))
    with pytest.raises(ValueError, match="`tolerance`"):
        scaled_tolerance(64, tolerance=-1)


def test_pointing_accuracy_mean_over_classes_vs_per_pair():
    # Class 0: 3 pairs, all hits; class 3: 1 pair, a miss; class 5: 2 pairs, 1 hit.
    hits = torch.tensor([True, True, True, False, True, False])
    classes = torch.tensor([0, 0, 0, 3, 5, 5])
    scores = pointing_accuracy(hits, classes)
    assert scores.mean_over_classes == pytest.approx((1 + 0 + 0.5) / 3)
    assert scores.per_pair == pytest.approx(4 / 6)
    assert pointing_accuracy([1.0, 0.0], [2, 2]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in pointing_accuracy([], []))
    with pytest.raises(ValueError, match="one value per pair"):
        pointing_accuracy(hits, classes[:3])
    with pytest.raises(TypeError, match="integer class ids"):
        pointing_accuracy(hits, classes.float())


def test_streaming_pointing_accuracy_equals_the_one_shot_value():
    hits = torch.tensor([True, True, True, False, True, False])
    classes = torch.tensor([0, 0, 0, 3, 5, 5])
    by_class, by_pair = PointingAccuracy(), PointingAccuracy(per_pair=True)
    for chunk in (slice(0, 2), slice(2, 5), slice(5, 6)):
        by_class.update(hits[chunk], classes[chunk])
        by_pair.update(hits[chunk], classes[chunk])
    expected = pointing_accuracy(hits, classes)
    assert float(by_class.compute()) == pytest.approx(expected.mean_over_classes)
    assert float(by_pair.compute()) == pytest.approx(expected.per_pair)
    assert math.isnan(PointingAccuracy().compute())


def test_threshold_boxes():
    maps = torch.zeros(3, 6, 8)
    maps[0, 1, 2] = 1.0
    maps[0, 4, 6] = 0.5
    maps[1] = -1.0  # nothing positive: whole image
    maps[2, 0, 0] = 2.0
    boxes = threshold_boxes(maps, 0.5)
    assert boxes.tolist() == [[2, 1, 7, 5], [0, 0, 8, 6], [0, 0, 1, 1]]
    assert threshold_boxes(maps, 0.6)[0].tolist() == [2, 1, 3, 2]
    assert threshold_boxes(maps, 0.0).tolist() == [[0, 0, 8, 6]] * 3


def test_box_iou_and_localization_error():
    iou = box_iou_pairs(
        torch.tensor([[0.0, 0.0, 4.0, 4.0]]),
        torch.tensor([[[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 6.0], [5.0, 5, 6, 6]]]),
    )
    assert torch.allclose(iou, torch.tensor([[1.0, 4 / 28, 0.0]]))
    maps = torch.zeros(2, 8, 8)
    maps[:, 2:6, 2:6] = 1.0
    boxes = torch.tensor([[[2.0, 2.0, 6.0, 8.0]], [[0.0, 0.0, 8.0, 8.0]]])
    # IoU 16/24 = 0.67 (hit) and 16/64 = 0.25 (miss).
    assert localization_error(maps, boxes).tolist() == [0.0, 1.0]
    assert localization_error(maps, boxes, iou_threshold=0.2).tolist() == [0.0, 0.0]
    labels = torch.tensor([[3], [3]])
    with pytest.raises(ValueError, match="no box of the target class for example 0"):
        localization_error(maps, boxes, box_labels=labels, target=2)


def test_choose_alpha_picks_the_best_threshold():
    maps = torch.zeros(2, 8, 8)
    maps[:, 2:6, 2:6] = 1.0
    maps[:, 0, 0] = 0.3  # a weak outlier spoils low thresholds
    boxes = torch.tensor([[[2.0, 2.0, 6.0, 6.0]]]).repeat(2, 1, 1)
    alpha, errors = choose_alpha(maps, boxes, alphas=[0.1, 0.2, 0.5, 0.9])
    assert alpha == 0.5 and errors.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert choose_alpha(maps, boxes)[1].shape == (20,)


def test_bad_input():
    maps, gt = torch.rand(2, 6, 6), torch.ones(2, 6, 6)
    with pytest.raises(ValueError, match="exactly one of `masks` and `boxes`"):
        pointing_game(maps)
    with pytest.raises(ValueError, match="`masks` must have the shape of `attributions`"):
        pointing_game(maps, masks=torch.ones(2, 5, 5))
    with pytest.raises(ValueError, match="`masks` has an example with an empty"):
        pointing_game(maps, masks=torch.zeros(2, 6, 6))
    with pytest.raises(ValueError, match="`tolerance` must be a finite number >= 0"):
        pointing_game(maps, masks=gt, tolerance=-1)
    with pytest.raises(ValueError, match="`tolerance` must be > 0"):
        pointing_game(maps, masks=gt, tolerance=0)
    with pytest.raises(ValueError, match="`boxes` must have shape \\(2, M, 4\\)"):
        pointing_game(maps, boxes=torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="`box_labels` must have shape"):
        pointing_game(
            maps, boxes=torch.zeros(2, 1, 4), box_labels=torch.zeros(2, 2).long(), target=0
        )
    with pytest.raises(TypeError, match="`box_labels` must be an integer tensor"):
        pointing_game(maps, boxes=torch.zeros(2, 1, 4), box_labels=torch.zeros(2, 1), target=0)
    with pytest.raises(ValueError, match="`boxes` contains NaN"):
        localization_error(maps, torch.full((2, 1, 4), float("nan")))
    with pytest.raises(ValueError, match="`attributions` contains NaN"):
        pointing_game(maps * float("nan"), masks=gt)
    with pytest.raises(ValueError, match="`attributions` must have shape"):
        threshold_boxes(torch.rand(6, 6))
    with pytest.raises(ValueError, match="same device"):
        pointing_game(maps, masks=gt.to("meta"))
    with pytest.raises(ValueError, match="`alpha` must be in \\[0, 1\\]"):
        threshold_boxes(maps, alpha=2.0)
