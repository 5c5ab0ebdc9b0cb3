"""Batch layouts, target selection, fixed-sample draws and method resolution."""

import pytest
import torch
from torch.utils.data import DataLoader

from captum_ext.data.samples import collate_samples
from captum_ext.data.shapes import ShapesDataset
from lightning_callbacks._attribution import AttributionSpec, import_method, pixel_maps
from lightning_callbacks._batch import (
    Samples,
    check_target_policy,
    select_targets,
    unpack_batch,
)
from lightning_callbacks._samples import FixedSamples


def test_unpack_batch_layouts():
    images = torch.rand(2, 3, 8, 8)
    d = unpack_batch(
        {"image": images, "labels": torch.tensor([1, 0]), "masks": torch.zeros(2, 3, 8, 8)}
    )
    assert d.images is images and d.labels.tolist() == [1, 0] and d.masks.shape == (2, 3, 8, 8)
    t = unpack_batch([images, torch.tensor([2, 2]), "extra"])
    assert t.labels.tolist() == [2, 2] and t.masks is None
    assert unpack_batch(images).labels is None
    custom = unpack_batch({"x": images}, unpack=lambda b: (b["x"],))
    assert custom.images is images


@pytest.mark.parametrize(
    "batch, error, match",
    [
        ({"pixels": torch.rand(1, 3, 8, 8)}, ValueError, "'image'"),
        ("not a batch", TypeError, "batch"),
        (torch.rand(3, 8, 8), ValueError, "4 dimensions"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.long), TypeError, "floating-point"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
    ],
)
def test_unpack_batch_rejects_bad_batches(batch, error, match):
    with pytest.raises(error, match=match):
        unpack_batch(batch)


def test_select_targets_policies():
    logits = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.7], [0.3, 0.1, 0.2]])
    multi_hot = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    s = Samples(torch.zeros(3, 3, 4, 4), labels=multi_hot)
    # present class scored highest; no present class -> predicted
    assert select_targets(s, logits, "label").tolist() == [2, 2, 0]
    assert select_targets(s, logits, "predicted").tolist() == [1, 0, 0]
    assert select_targets(s, logits, 2).tolist() == [2, 2, 2]
    single = Samples(torch.zeros(3, 3, 4, 4), labels=torch.tensor([2, 1, 0]))
    assert select_targets(single, logits, "label").tolist() == [2, 1, 0]


def test_select_targets_errors():
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="needs labels"):
        select_targets(Samples(torch.zeros(2, 3, 4, 4)), logits, "label")
    with pytest.raises(ValueError, match="out of range"):
        select_targets(Samples(torch.zeros(2, 3, 4, 4)), logits, 3)
    with pytest.raises(ValueError, match="do not match"):
        select_targets(Samples(torch.zeros(2, 3, 4, 4), labels=torch.ones(2, 4)), logits, "label")
    with pytest.raises(ValueError, match="target"):
        check_target_policy("best")
    with pytest.raises(TypeError, match="target"):
        check_target_policy(1.5)
    with pytest.raises(ValueError, match=">= 0"):
        check_target_policy(-1)


def test_fixed_samples_draw_is_seeded_and_restorable():
    dataset = ShapesDataset(20, image_size=32, split="val")
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_samples)

    class FakeTrainer:  # the attributes FixedSamples reads from a Trainer
        testing = False
        test_dataloaders = None
        val_dataloaders = loader
        datamodule = None

    first = FixedSamples(num_samples=5, seed=3)
    samples = first.get(FakeTrainer(), None)
    expected = sorted(torch.randperm(20, generator=torch.Generator().manual_seed(3))[:5].tolist())
    assert first.indices == expected
    assert torch.equal(samples.images, torch.stack([dataset[i]["image"] for i in expected]))
    assert samples.masks.shape == (5, 6, 32, 32)
    resumed = FixedSamples(num_samples=5, seed=99)
    resumed.load_state_dict(first.state_dict())
    assert resumed.get(FakeTrainer(), None).images.equal(samples.images)
    assert FixedSamples(samples=torch.rand(3, 3, 8, 8)).state_dict() == {}
    with pytest.raises(ValueError, match="num_samples"):
        FixedSamples(num_samples=0)


def test_pixel_maps_shapes():
    images = torch.rand(2, 3, 8, 8)
    channel = torch.rand(2, 3, 8, 8)
    assert torch.allclose(pixel_maps((channel,), images), channel.mean(1, keepdim=True))
    low = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]).expand(2, 1, 2, 2)
    up = pixel_maps(low, images)
    assert up.shape == (2, 1, 8, 8)
    assert up[0, 0, 0, 0] == 0 and up[0, 0, 0, -1] == 1  # bilinear, edges kept
    with pytest.raises(ValueError, match="3 maps for 2 images"):
        pixel_maps(torch.rand(3, 1, 8, 8), images)
    with pytest.raises(TypeError, match="tensor"):
        pixel_maps("map", images)


def test_method_resolution_and_spec_errors():
    from captum.attr import Saliency

    from captum_ext.attr import RandomAttribution

    assert import_method("Saliency") is Saliency
    assert import_method("RandomAttribution") is RandomAttribution
    assert import_method("captum.attr.Saliency") is Saliency
    with pytest.raises(ValueError, match="cannot be imported"):
        import_method("captum.attr.NoSuchMethod")
    with pytest.raises(ValueError, match="neither"):
        import_method("NoSuchMethod")
    with pytest.raises(ValueError, match="exactly one"):
        AttributionSpec()
    with pytest.raises(ValueError, match="exactly one"):
        AttributionSpec("Saliency", attribution_fn=lambda m, x, t: x)
    with pytest.raises(TypeError, match="method"):
        AttributionSpec(3)
    with pytest.raises(TypeError, match="model"):
        AttributionSpec("Saliency", model=3)
