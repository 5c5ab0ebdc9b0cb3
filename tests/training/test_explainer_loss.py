"""Each term of the Explainer and RTIS losses against hand computations (Stalder et al. 2022)."""

import math

import pytest
import torch

from captum_ext.fillers import Constant
from captum_ext.fillers.base import Filler
from captum_ext.fillers.blur import blur
from captum_ext.training.explainer_loss import (
    ExplainerLoss,
    RTISLoss,
    aggregate_masks,
    area_bound,
    class_area_bound,
    class_specific_loss,
    classification_loss,
    color_noise,
    mask_area,
    negative_entropy,
    total_variation,
)


def mean_pool(x):
    """A 'classifier' whose logits are the channel means (C = K)."""
    return x.mean(dim=(2, 3))


def test_aggregate_masks_targets_all_targets_and_no_target():
    s = torch.tensor([0.2, 0.7, 0.4]).view(1, 3, 1, 1).repeat(3, 1, 1, 1)
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    m, n = aggregate_masks(s, labels)
    assert m.shape == n.shape == (3, 1, 1, 1)
    assert torch.allclose(m.flatten(), torch.tensor([0.4, 0.7, 0.0]))
    assert torch.allclose(n.flatten(), torch.tensor([0.7, 0.0, 0.7]))


def test_classification_loss_is_bce_mean_over_classes():
    logits = torch.tensor([[0.0, 2.0]])
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert classification_loss(logits, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(expected)


def test_negative_entropy_on_known_logits():
    logits = torch.tensor([[0.0, math.log(3.0)], [5.0, 5.0]])  # p = (1/4, 3/4) and uniform
    expected0 = (0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / 2
    got = negative_entropy(logits)
    assert got[0].item() == pytest.approx(expected0, abs=1e-6)
    assert got[1].item() == pytest.approx(math.log(0.5) / 2, abs=1e-6)
    # A saturated prediction: p log p -> 0 (clamped at 1e-16, no NaN).
    assert negative_entropy(torch.tensor([[1000.0, -1000.0]])).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_mask_area():
    m = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    assert torch.allclose(mask_area(m), torch.tensor([0.5, 0.0]))


def test_area_bound_on_a_4x4_mask():
    values = torch.tensor([0.1] * 8 + [0.2] * 4 + [0.5, 0.5, 1.0, 1.0])
    s = values[torch.randperm(16, generator=torch.Generator().manual_seed(0))].view(4, 4)
    # a = 0.25: the 4 largest (1, 1, .5, .5) should be 1 -> 1.0 missing; b = 0.5: the
    # 8 smallest (0.1 each) should be 0 -> 0.8 excess; both divided by Z = 16.
    assert area_bound(s, 0.25, 0.5).item() == pytest.approx((1.0 + 0.8) / 16)


def test_area_bound_uses_the_mask_size_and_floors():
    s = torch.zeros(2, 8)  # Z = 16, a = 0.1 -> floor(1.6) = 1 one required
    assert area_bound(s, 0.1, 1.0).item() == pytest.approx(1 / 16)
    s[0, 0] = 1.0
    assert area_bound(s, 0.1, 1.0).item() == 0.0
    with pytest.raises(ValueError, match="min_area"):
        area_bound(s, 0.5, 0.2)


def test_total_variation_l1_and_squared():
    m = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert total_variation(m).item() == pytest.approx(5 / 9)  # 4 horizontal + 1 vertical jump
    half = torch.tensor([[0.0, 0.5]])
    assert total_variation(half).item() == pytest.approx(0.25)
    assert total_variation(half, power=2).item() == pytest.approx(0.125)
    assert total_variation(torch.ones(2, 5, 5)).tolist() == [0.0, 0.0]


def test_class_area_bound_mean_sum_and_no_target():
    s = torch.zeros(2, 3, 2, 2)
    s[:, 0] = 1.0  # B(ones) with a = b = 0.5: 2 excess / 4 = 0.5 ; B(zeros) = 0.5
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert torch.allclose(class_area_bound(s, labels, 0.5, 0.5), torch.tensor([0.5, 0.0]))
    assert torch.allclose(class_area_bound(s, labels, 0.5, 0.5, "sum"), torch.tensor([1.0, 0.0]))


def _batch():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 6, 6, generator=g)
    logits = torch.randn(3, 3, 6, 6, generator=g)
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    return images, labels, logits


def test_explainer_loss_is_the_weighted_sum_of_its_terms():
    images, labels, logits = _batch()
    weights = dict(l_e=2.0, l_tv=0.5, l_ac=0.7, l_m=0.1, l_n=0.3, min_area=0.1, max_area=0.4)
    terms = ExplainerLoss(**weights)(images, labels, logits, mean_pool)
    s = logits.sigmoid()
    m, n = aggregate_masks(s, labels)
    expected = {
        "classification": classification_loss(mean_pool(m * images), labels).mean(),
        "entropy": 2.0 * negative_entropy(mean_pool((1 - m) * images)).mean(),
        "area_target": 0.1 * m.mean(),
        "area_nontarget": 0.3 * n.mean(),
        "area_bound": 0.7 * class_area_bound(s, labels, 0.1, 0.4).mean(),
        "tv": 0.5 * (total_variation(m[:, 0]) + total_variation(n[:, 0])).mean(),
    }
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-5), name
    assert terms["loss"].item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-5)
    # the all-target image contributes n = 0
    assert n[1].abs().sum() == 0


def test_class_specific_term_against_hand_computation():
    images, labels, logits = _batch()
    s = logits.sigmoid()
    got = class_specific_loss(images, labels, s, mean_pool, Constant(0.0))
    # image 0: class 0; image 1: classes 0, 1, 2; image 2: classes 1, 2
    expected = []
    for i, classes in enumerate([[0], [0, 1, 2], [1, 2]]):
        per_class = [
            classification_loss(
                mean_pool(s[i : i + 1, c : c + 1] * images[i : i + 1]), torch.eye(3)[c : c + 1]
            ).item()
            for c in classes
        ]
        expected.append(sum(per_class) / len(per_class))
    assert got.tolist() == pytest.approx(expected, rel=1e-5)


def test_class_specific_term_prefers_separate_masks_to_the_union():
    # Two objects (class 0 in the left half, class 1 in the right half); the
    # 'classifier' reads each class from its own half of the image.
    images = torch.zeros(1, 1, 2, 2)
    images[..., 0] = 1.0
    images[..., 1] = 1.0

    def halves(x):
        return torch.stack([x[..., 0].sum(dim=(1, 2)), x[..., 1].sum(dim=(1, 2))], dim=1) * 4 - 4

    labels = torch.tensor([[1.0, 1.0]])
    separate = torch.zeros(1, 2, 2, 2)
    separate[0, 0, :, 0] = 1.0
    separate[0, 1, :, 1] = 1.0
    union = torch.ones(1, 2, 2, 2)
    filler = Constant(0.0)
    assert class_specific_loss(images, labels, separate, halves, filler) < class_specific_loss(
        images, labels, union, halves, filler
    )
    # The paper's loss cannot tell them apart through the aggregated target mask.
    m_sep, _ = aggregate_masks(separate, labels)
    m_union, _ = aggregate_masks(union, labels)
    assert torch.equal(m_sep, m_union)


def test_class_specific_term_is_off_by_default_and_weighted_when_on():
    images, labels, logits = _batch()
    assert "class_specific" not in ExplainerLoss()(images, labels, logits, mean_pool)
    off = ExplainerLoss()(images, labels, logits, mean_pool)
    on = ExplainerLoss(l_c=2.5)(images, labels, logits, mean_pool)
    expected = 2.5 * class_specific_loss(images, labels, logits.sigmoid(), mean_pool, Constant(0.0))
    assert on["class_specific"].item() == pytest.approx(expected.mean().item(), rel=1e-5)
    assert on["loss"].item() == pytest.approx(
        off["loss"].item() + on["class_specific"].item(), rel=1e-5
    )
    no_target = ExplainerLoss(l_c=1.0)(images, torch.zeros(3, 3), logits, mean_pool)
    assert set(no_target) == set(ExplainerLoss(l_c=1.0).TERMS) | {"loss"}
    with pytest.raises(ValueError, match="l_c"):
        ExplainerLoss(l_c=-1.0)


class _MeanInpainter(Filler):
    """A hole-dependent filler: each hole is filled with the mean of the kept pixels."""

    needs_holes = True

    def reference(self, inputs, holes=None, *, generator=None):
        kept = (~holes).to(inputs.dtype)
        mean = (inputs * kept).sum(dim=(2, 3), keepdim=True) / kept.sum(dim=(2, 3), keepdim=True)
        return mean.expand_as(inputs)


def _kept_and_complement(loss):
    """The two images ``loss`` classifies for a 2 x 2 image whose mask keeps the object.

    Object (value 5) in the left column, background (value 1) in the right one.
    """
    images = torch.tensor([[[[5.0, 1.0], [5.0, 1.0]]]])
    logits = torch.tensor([[[[20.0, -20.0], [20.0, -20.0]]]])
    seen = []

    def record(x):
        seen.append(x.detach())
        return x.mean(dim=(2, 3))

    loss(images, torch.tensor([[1.0]]), logits, record)
    return seen[0].split(1)


def test_hole_dependent_filler_gets_a_reference_for_each_removal():
    # The complement image must not bring the object back.
    kept, complement = _kept_and_complement(ExplainerLoss(filler=_MeanInpainter()))
    # the removed background is filled from the kept object
    assert torch.allclose(kept, torch.full((1, 1, 2, 2), 5.0), atol=1e-6)
    # removed object pixels are filled from the background (1), not from the object (5)
    assert torch.allclose(complement, torch.ones(1, 1, 2, 2), atol=1e-6)


def test_removal_filler_gives_the_complement_reference_only():
    # The kept image's removed background takes `filler` (Constant 3), the complement's
    # removed object the removal filler (the inpainter).
    loss = ExplainerLoss(filler=Constant(3.0), removal_filler=_MeanInpainter())
    kept, complement = _kept_and_complement(loss)
    assert torch.allclose(kept, torch.tensor([[[[5.0, 3.0], [5.0, 3.0]]]]), atol=1e-6)
    assert torch.allclose(complement, torch.ones(1, 1, 2, 2), atol=1e-6)
    # by default the complement shares the filler's reference
    _, complement = _kept_and_complement(ExplainerLoss(filler=Constant(3.0)))
    assert torch.allclose(complement, torch.tensor([[[[3.0, 1.0], [3.0, 1.0]]]]), atol=1e-6)


def test_images_without_target_are_skipped():
    images, labels, logits = _batch()
    loss = ExplainerLoss()
    with_empty = loss(
        torch.cat([images, images[:1]]),
        torch.cat([labels, torch.zeros(1, 3)]),
        torch.cat([logits, logits[:1]]),
        mean_pool,
    )
    without = loss(images, labels, logits, mean_pool)
    for name in without:
        assert with_empty[name].item() == pytest.approx(without[name].item(), rel=1e-6)


def test_batch_without_any_target_gives_zero_and_a_valid_graph():
    images, _, logits = _batch()
    logits.requires_grad_(True)
    terms = ExplainerLoss()(images, torch.zeros(3, 3), logits, mean_pool)
    assert terms["loss"].item() == 0.0
    terms["loss"].backward()
    assert logits.grad is not None and logits.grad.abs().sum() == 0


def test_gradients_reach_the_mask_logits():
    images, labels, logits = _batch()
    logits.requires_grad_(True)
    ExplainerLoss()(images, labels, logits, mean_pool)["loss"].backward()
    assert logits.grad.abs().sum() > 0


def test_loss_rejects_mismatched_shapes_and_class_counts():
    images, labels, logits = _batch()
    with pytest.raises(ValueError, match="mask_logits"):
        ExplainerLoss()(images, labels, logits[:, :2], mean_pool)
    with pytest.raises(ValueError, match="batch sizes"):
        ExplainerLoss()(images, labels[:2], logits, mean_pool)
    with pytest.raises(ValueError, match="classifier returned 2 classes"):
        ExplainerLoss()(images, labels, logits, lambda x: x.mean(dim=(2, 3))[:, :2])
    with pytest.raises(ValueError, match="l_e"):
        ExplainerLoss(l_e=-1.0)
    with pytest.raises(ValueError, match="bound_reduction"):
        ExplainerLoss(bound_reduction="max")
    with pytest.raises(TypeError, match="`filler` must be a captum_ext.fillers.Filler"):
        ExplainerLoss(filler="blur")
    with pytest.raises(TypeError, match="labels"):
        ExplainerLoss()(images, labels.long(), logits, mean_pool)


def test_color_noise_statistics():
    noise = color_noise(torch.zeros(64, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    offsets = noise.mean(dim=(2, 3))
    assert offsets.abs().max() <= 0.33 + 0.02 and offsets.abs().max() > 0.25
    assert (noise - offsets[:, :, None, None]).std().item() == pytest.approx(0.11, rel=0.05)


def test_rtis_alternative_uses_both_kinds_and_is_seeded():
    images = torch.randn(2, 3, 16, 16)
    loss = RTISLoss()
    alts = [loss.alternative(images, torch.Generator().manual_seed(s)) for s in range(8)]
    kinds = {"blur" if torch.allclose(a, blur(images, 10.0)) else "noise" for a in alts}
    assert kinds == {"blur", "noise"}
    a = loss.alternative(images, torch.Generator().manual_seed(3))
    b = loss.alternative(images, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_rtis_loss_against_hand_computation():
    images, labels, logits = _batch()
    loss = RTISLoss()
    terms = loss(images, labels, logits, mean_pool, torch.Generator().manual_seed(1))
    alt = loss.alternative(images, torch.Generator().manual_seed(1))
    m, _ = aggregate_masks(logits.sigmoid(), labels)
    pres = mean_pool(m * images + (1 - m) * alt)
    destr = mean_pool((1 - m) * images + m * alt)
    y = labels > 0.5
    expected = (
        10 * total_variation(m[:, 0], power=2).mean()
        + m.mean()
        - torch.log(pres.sigmoid()[y]).mean()
        + 5 * destr.sigmoid()[y].mean() ** 0.3
    )
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(terms) == {"loss", "tv", "area_target", "preserver", "destroyer"}
