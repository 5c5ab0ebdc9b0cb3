import time

import pytest
import torch

from captum_ext.data.samples import collate_samples
from captum_ext.data.shapes import SHAPES_MEAN, SHAPES_STD, ShapesDataModule, ShapesDataset
from captum_ext.data.shapes_world import SHAPE_NAMES, generate_shapes


def test_deterministic_in_seed():
    a, b = generate_shapes(20, 32, seed=7), generate_shapes(20, 32, seed=7)
    c = generate_shapes(20, 32, seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.instances, b.instances)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("size, k", [(32, 2), (48, 6), (64, 8)])
def test_ground_truth_is_consistent(size, k):
    batch = generate_shapes(60, size, num_classes=k, seed=1)
    masks, labels = batch.class_masks(k), batch.labels(k)
    assert batch.images.shape == (60, 3, size, size) and masks.shape == (60, k, size, size)
    assert torch.equal(labels.bool(), masks.flatten(2).any(2))
    used = batch.object_classes >= 0
    assert used.sum(1).min() >= 1 and used.sum(1).max() <= 3
    # Every object keeps >= half of its area visible and its class is labelled.
    visible = torch.stack([(batch.instances == j + 1).flatten(1).sum(1) for j in range(3)], 1)
    assert (visible[used] > 0).all()
    assert labels.gather(1, batch.object_classes.clamp_min(0))[used].eq(1).all()
    # Masks of different classes never overlap (occlusion resolves every pixel).
    assert masks.sum(1).max() <= 1
    # Boxes are tight around each object's visible pixels.
    boxes, box_labels = batch.boxes()
    for i in range(5):
        for j in range(3):
            if box_labels[i, j] < 0:
                continue
            ys, xs = (batch.instances[i] == j + 1).nonzero(as_tuple=True)
            assert boxes[i, j].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_all_classes_occur_and_objects_differ_from_background():
    batch = generate_shapes(300, 64, seed=2)
    assert (batch.labels(6).sum(0) > 50).all()
    images = batch.images.float() / 255
    inside = batch.instances > 0
    # Objects and background differ in colour on average (objects are visible).
    diff = (images * inside[:, None]).sum((2, 3)) / inside[:, None].sum((2, 3)).clamp_min(1) - (
        images * ~inside[:, None]
    ).sum((2, 3)) / (~inside[:, None]).sum((2, 3))
    assert diff.abs().sum(1).mean() > 0.3


def test_generation_speed():
    start = time.perf_counter()
    generate_shapes(10000, 64, seed=0)
    assert time.perf_counter() - start < 10.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="`image_size` must be >= 32"):
        generate_shapes(2, 16)
    with pytest.raises(ValueError, match="`num_classes` must be in 2..8"):
        generate_shapes(2, 32, num_classes=9)
    with pytest.raises(ValueError, match="`num_images`"):
        generate_shapes(0)
    with pytest.raises(ValueError, match="`split`"):
        ShapesDataset(2, 32, split="dev")


def test_dataset_sample_format_and_normalisation():
    ds = ShapesDataset(10, 32, split="val")
    s = ds[3]
    pixels = ds.images[3].float() / 255
    mean = torch.tensor(SHAPES_MEAN).view(3, 1, 1)
    std = torch.tensor(SHAPES_STD).view(3, 1, 1)
    assert torch.allclose(s["image"], (pixels - mean) / std)
    assert s["labels"].tolist() == s["masks"].flatten(1).amax(1).tolist()
    assert s["boxes"].shape == (3, 4) and s["box_labels"].shape == (3,)
    assert s["index"] == 3
    raw = ShapesDataset(10, 32, split="val", normalize=False)[3]["image"]
    assert torch.allclose(raw, pixels)
    train = ShapesDataset(10, 32, split="train")
    assert not torch.equal(train.images, ds.images)


def test_datamodule_and_collate():
    dm = ShapesDataModule(image_size=32, num_train=8, num_val=4, num_test=4, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["masks"].shape == (4, 6, 32, 32)
    assert batch["boxes"].shape == (4, 3, 4) and batch["index"].shape == (4,)
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 4


def test_collate_pads_variable_box_counts():
    samples = [
        {
            "image": torch.zeros(1),
            "boxes": torch.ones(2, 4),
            "box_labels": torch.tensor([1, 2]),
            "difficult": torch.tensor([False, True]),
        },
        {
            "image": torch.zeros(1),
            "boxes": torch.zeros(0, 4),
            "box_labels": torch.zeros(0, dtype=torch.long),
            "difficult": torch.zeros(0, dtype=torch.bool),
        },
    ]
    batch = collate_samples(samples)
    assert batch["boxes"].shape == (2, 2, 4)
    assert batch["box_labels"].tolist() == [[1, 2], [-1, -1]]
    assert batch["difficult"].tolist() == [[False, True], [False, False]]
    assert SHAPE_NAMES[:2] == ("disc", "square")
