"""Class-specific masking matrix (Stalder Table 1) by hand."""

import math

import pytest
import torch

from captum_ext.metrics import class_masking_matrix
from tests.conftest import TinyCNN
from tests.metrics.helpers import MeanColour


def scene():
    """Image 0: red left column, blue right column; image 1: all red."""
    x = torch.zeros(2, 3, 2, 2)
    x[0, 0, :, 0] = 1
    x[0, 2, :, 1] = 1
    x[1, 0] = 1
    masks = torch.zeros(2, 3, 2, 2)
    masks[0, 0, :, 0] = 1.0
    masks[0, 2, :, 1] = 0.55  # kept at thresholds 0.1..0.5, removed at 0.6..0.9
    masks[1, 0] = 1.0
    labels = torch.tensor([[1, 0, 1], [1, 0, 0]])
    return x, masks, labels


def test_matrix_by_hand():
    x, masks, labels = scene()
    matrix = class_masking_matrix(MeanColour(), x, masks, labels, score="logit", batch_size=5)
    # Logits are the channel means. Row 0 (red): images 0 and 1; row 2 (blue): image 0.
    expected = torch.tensor(
        [
            [0.75, 0.75, 0.0, 0.0],
            [math.nan] * 4,
            [0.5, 0.0, 0.0, 0.5 * 5 / 9],
        ]
    )
    assert torch.allclose(matrix, expected, equal_nan=True)
    sub = class_masking_matrix(MeanColour(), x, masks, labels, score="logit", classes=[2, 0])
    assert torch.allclose(sub, expected[[2, 0]][:, [0, 3, 1]])
    one = class_masking_matrix(MeanColour(), x, masks, labels, score="logit", thresholds=[0.6])
    assert one[2, 3].item() == 0.0


def test_softmax_default_and_batching():
    g = torch.Generator().manual_seed(0)
    model = TinyCNN(num_classes=3).eval()
    x, masks = torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    a = class_masking_matrix(model, x, masks, labels, batch_size=1000)
    b = class_masking_matrix(model, x, masks, labels, batch_size=3)
    assert torch.allclose(a, b, atol=1e-6)
    probs = model(x).softmax(1)
    assert a[1, 0].item() == pytest.approx(probs[[1, 2], 1].mean().item(), abs=1e-6)
    assert bool(((a >= 0) & (a <= 1)).all())


def test_bad_input():
    x, masks, labels = scene()
    model = MeanColour()
    with pytest.raises(ValueError, match="`class_masks` must have values in"):
        class_masking_matrix(model, x, masks * 2, labels)
    with pytest.raises(ValueError, match="`class_masks` must have shape"):
        class_masking_matrix(model, x, masks[:, :, :1], labels)
    with pytest.raises(ValueError, match="`labels` must have shape"):
        class_masking_matrix(model, x, masks, labels[:, :2])
    with pytest.raises(ValueError, match="`classes` must be non-empty"):
        class_masking_matrix(model, x, masks, labels, classes=[3])
    with pytest.raises(ValueError, match="`thresholds` must be"):
        class_masking_matrix(model, x, masks, labels, thresholds=[1.0])
    with pytest.raises(ValueError, match="`class_masks` contains NaN"):
        class_masking_matrix(model, x, masks * float("nan"), labels)
    with pytest.raises(TypeError, match="`inputs` must be a floating-point"):
        class_masking_matrix(model, x.long(), masks, labels)
