"""Random holes and the inpainting datasets (shapes backgrounds or an image folder)."""

import cv2
import numpy as np
import pytest
import torch

from captum_ext.data.holes import HOLE_KINDS, random_holes
from captum_ext.data.inpainting import InpaintingDataModule, InpaintingDataset
from captum_ext.data.shapes_world import generate_backgrounds


@pytest.mark.parametrize("kind", HOLE_KINDS)
def test_each_hole_kind(kind):
    rng = np.random.default_rng(0)
    image = np.random.default_rng(1).random((40, 48, 3))
    for _ in range(10):
        hole = random_holes(image, rng, kinds=(kind,), max_fraction=0.6)
        assert hole.shape == (40, 48) and hole.any() and hole.mean() <= 0.6


def test_unknown_hole_kind():
    with pytest.raises(ValueError, match="kinds"):
        random_holes(np.zeros((8, 8, 3)), np.random.default_rng(0), kinds=("circle",))


def test_backgrounds_are_deterministic_and_textured():
    a, b = generate_backgrounds(3, 32, seed=4), generate_backgrounds(3, 32, seed=4)
    assert a.dtype == torch.uint8 and a.shape == (3, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, generate_backgrounds(3, 32, seed=5))
    assert float(a.float().std(dim=(2, 3)).min()) > 1.0  # not flat


def test_validation_holes_are_fixed_and_training_holes_fresh():
    images = generate_backgrounds(2, 32)
    val = InpaintingDataset(images, fixed_holes=True, flip=False)
    assert torch.equal(val[0]["holes"], val[0]["holes"])
    train = InpaintingDataset(images, seed=0)
    draws = [train[0]["holes"] for _ in range(4)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    with pytest.raises(ValueError, match="images"):
        InpaintingDataset(images.float())


def test_datamodule_from_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        sub = tmp_path / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"{i}.png"), (rng.random((30, 50, 3)) * 255).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    dm = InpaintingDataModule(image_dir=str(tmp_path), image_size=24, batch_size=4)
    dm.setup("fit")
    assert len(dm.train_set) == 11 and len(dm.val_set) == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 24, 24) and batch["holes"].dtype == torch.bool
    assert 0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1


def test_datamodule_bad_folder(tmp_path):
    with pytest.raises(ValueError, match="image_dir"):
        InpaintingDataModule(image_dir=str(tmp_path)).setup("fit")
    with pytest.raises(ValueError, match="image_dir"):
        InpaintingDataModule(image_dir=str(tmp_path / "missing")).setup("fit")
