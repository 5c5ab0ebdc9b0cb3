"""Deletion / insertion curves against hand-computed values."""

import pytest
import torch

from captum_ext.fillers import Blur, Constant, Inpaint
from captum_ext.metrics import (
    curve_auc,
    deletion_auc,
    deletion_curve,
    insertion_auc,
    insertion_curve,
)
from tests.conftest import TinyCNN
from tests.metrics.helpers import PixelSum

# One 1-channel 2 x 2 image with pixels 4, 3, 2, 1 and the map ranking them in that order.
X = torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]])
MAP = torch.tensor([[[[0.9, 0.7], [0.5, 0.1]]]])


def test_deletion_curve_by_hand():
    curve = deletion_curve(PixelSum(), X, MAP, target=0, steps=4, score="logit")
    assert torch.allclose(curve.fractions, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(curve.scores, torch.tensor([[10.0, 6.0, 3.0, 1.0, 0.0]]))
    # 0.25 * ((10 + 6) / 2 + (6 + 3) / 2 + (3 + 1) / 2 + (1 + 0) / 2)
    assert torch.allclose(curve.auc, torch.tensor([3.75]))


def test_insertion_curve_by_hand():
    curve = insertion_curve(PixelSum(), X, MAP, target=0, steps=4, score="logit")
    assert torch.allclose(curve.scores, torch.tensor([[0.0, 4.0, 7.0, 9.0, 10.0]]))
    assert torch.allclose(curve.auc, torch.tensor([6.25]))


def test_reversed_map_and_constant_filler_value():
    # Least important first, filled with 1: remove the 1 -> 4+3+2+1 = 10; the 2 too ->
    # 4+3+1+1 = 9; the 3 too -> 4+1+1+1 = 7; all -> 4.
    curve = deletion_curve(
        PixelSum(), X, -MAP, target=0, steps=4, score="logit", filler=Constant(1.0)
    )
    assert torch.allclose(curve.scores, torch.tensor([[10.0, 10.0, 9.0, 7.0, 4.0]]))


def test_fractions_follow_rounded_pixel_counts():
    # 4 pixels in 3 steps: round(4/3) = 1, round(8/3) = 3 pixels.
    curve = deletion_curve(PixelSum(), X, MAP, target=0, steps=3, score="logit")
    assert torch.allclose(curve.fractions, torch.tensor([0.0, 0.25, 0.75, 1.0]))
    assert torch.allclose(curve.scores, torch.tensor([[10.0, 6.0, 1.0, 0.0]]))


def test_ties_are_removed_in_raster_order():
    curve = deletion_curve(PixelSum(), X, torch.zeros(1, 2, 2), target=0, steps=4, score="logit")
    assert torch.allclose(curve.scores, torch.tensor([[10.0, 6.0, 3.0, 1.0, 0.0]]))


def test_softmax_score_and_targets_per_example():
    x = torch.cat([X, 2 * X])
    curve = deletion_curve(PixelSum(), x, torch.cat([MAP, MAP]), target=[0, 1], steps=4)
    sums = torch.tensor([[10.0, 6.0, 3.0, 1.0, 0.0], [20.0, 12.0, 6.0, 2.0, 0.0]])
    logits = torch.stack([sums, -sums, torch.zeros_like(sums)], dim=2)
    expected = torch.stack([logits[0].softmax(1)[:, 0], logits[1].softmax(1)[:, 1]])
    assert torch.allclose(curve.scores, expected)
    assert torch.allclose(curve.auc, curve_auc(curve.fractions, expected))


def test_batch_size_does_not_change_the_result():
    g = torch.Generator().manual_seed(0)
    model = TinyCNN().eval()
    x, maps = torch.rand(3, 3, 12, 12, generator=g), torch.rand(3, 3, 12, 12, generator=g)
    big = insertion_curve(model, x, maps, [0, 1, 2], batch_size=1000, filler=Blur(2.0))
    small = insertion_curve(model, x, maps, [0, 1, 2], batch_size=7, filler=Blur(2.0))
    assert torch.allclose(big.scores, small.scores, atol=1e-6)
    assert big.scores.shape == (3, 29)


def test_auc_shortcuts_match_curves():
    x = torch.cat([X, 3 * X])
    maps = torch.cat([MAP, -MAP])
    kwargs = dict(steps=4, score="logit")
    assert torch.allclose(
        deletion_auc(PixelSum(), x, maps, 0, **kwargs),
        deletion_curve(PixelSum(), x, maps, 0, **kwargs).auc,
    )
    assert torch.allclose(
        insertion_auc(PixelSum(), x, maps, 0, **kwargs),
        insertion_curve(PixelSum(), x, maps, 0, **kwargs).auc,
    )


def test_per_example_forward_args_follow_their_example():
    x = torch.cat([X, X])
    curve = deletion_curve(
        PixelSum(),
        x,
        torch.cat([MAP, MAP]),
        0,
        steps=4,
        score="logit",
        additional_forward_args=(torch.tensor([1.0, 10.0]),),
        batch_size=3,
    )
    assert torch.allclose(curve.scores[1], 10 * curve.scores[0])


class MeanFill:
    """Inpainter test double: fills holes with the mean of the kept pixels (0.5 if none)."""

    def __call__(self, images, holes):
        keep = (~holes).to(images.dtype)
        count = keep.sum(dim=(2, 3), keepdim=True)
        mean = (images * keep).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1)
        mean = torch.where(count > 0, mean, 0.5)
        return torch.where(holes, mean, images)


def test_hole_dependent_filler_gets_the_current_holes():
    x = torch.tensor([[[[0.8, 0.6], [0.4, 0.2]]]])
    curve = deletion_curve(
        PixelSum(), x, MAP, 0, steps=4, score="logit", filler=Inpaint(MeanFill())
    )
    # Remove 0.8 -> filled with mean(0.6, 0.4, 0.2) = 0.4; sum 1.6. Remove 0.8, 0.6 ->
    # mean(0.4, 0.2) = 0.3 twice; 1.2. Three removed -> 0.2 * 4 = 0.8. All -> 4 * 0.5.
    assert torch.allclose(curve.scores, torch.tensor([[2.0, 1.6, 1.2, 0.8, 2.0]]))
    insertion = insertion_curve(
        PixelSum(), x, MAP, 0, steps=4, score="logit", filler=Inpaint(MeanFill())
    )
    # Nothing inserted -> 4 * 0.5; 0.8 inserted -> the rest filled with 0.8 -> 3.2.
    assert torch.allclose(insertion.scores[0, :2], torch.tensor([2.0, 3.2]))


def test_random_filler_is_seeded():
    from captum_ext.fillers import UniformNoise

    model = TinyCNN().eval()
    x, maps = torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8)
    a = deletion_auc(
        model,
        x,
        maps,
        1,
        filler=UniformNoise(),
        steps=4,
        generator=torch.Generator().manual_seed(3),
    )
    b = deletion_auc(
        model,
        x,
        maps,
        1,
        filler=UniformNoise(),
        steps=4,
        generator=torch.Generator().manual_seed(3),
    )
    c = deletion_auc(
        model,
        x,
        maps,
        1,
        filler=UniformNoise(),
        steps=4,
        generator=torch.Generator().manual_seed(4),
    )
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_input():
    model = PixelSum()
    with pytest.raises(ValueError, match="`attributions` must cover"):
        deletion_curve(model, X, torch.zeros(1, 3, 3), 0)
    with pytest.raises(ValueError, match="`attributions` contains NaN"):
        deletion_curve(model, X, MAP * float("nan"), 0)
    with pytest.raises(TypeError, match="`attributions` must be a floating-point"):
        deletion_curve(model, X, torch.zeros(1, 2, 2, dtype=torch.long), 0)
    with pytest.raises(TypeError, match="`inputs` must be a floating-point"):
        deletion_curve(model, X.long(), MAP, 0)
    with pytest.raises(ValueError, match="`inputs` must have 4 dimensions"):
        insertion_curve(model, X[0], MAP, 0)
    with pytest.raises(ValueError, match="`inputs` contains NaN"):
        insertion_curve(model, X * float("inf"), MAP, 0)
    with pytest.raises(ValueError, match="`target` 3 is out of range for 3 classes"):
        deletion_curve(model, X, MAP, 3, steps=2)
    with pytest.raises(ValueError, match="`target` has 2 entries"):
        deletion_curve(model, X, MAP, [0, 1], steps=2)
    with pytest.raises(ValueError, match="`steps` must be >= 1"):
        deletion_curve(model, X, MAP, 0, steps=0)
    with pytest.raises(ValueError, match="`score` must be one of"):
        deletion_curve(model, X, MAP, 0, score="probability")
    with pytest.raises(TypeError, match="`filler` must be a captum_ext.fillers.Filler"):
        deletion_curve(model, X, MAP, 0, filler=0.0)
    with pytest.raises(ValueError, match="same device"):
        deletion_curve(model, X, MAP.to("meta"), 0)
    with pytest.raises(ValueError, match="same device"):
        deletion_curve(TinyCNN(channels=1).to("meta"), X, MAP, 0)
