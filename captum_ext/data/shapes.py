"""The shapes world as a torch ``Dataset`` (and, with Lightning, a ``LightningDataModule``)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from captum_ext.data.shapes_world import SHAPE_NAMES, generate_shapes
from captum_ext.fillers.image_space import ImageSpace

#: Normalisation of the shapes world (its measured pixel mean is 0.50 and std 0.25),
#: so that ``Constant(0)`` is the mean colour, as for ImageNet models.
SHAPES_MEAN = (0.5, 0.5, 0.5)
SHAPES_STD = (0.25, 0.25, 0.25)

#: Seed offsets of the splits: the same base seed never gives overlapping splits.
SPLIT_OFFSETS = {"train": 0, "val": 1_000_003, "test": 2_000_003}


def shapes_space() -> ImageSpace:
    """The :class:`~captum_ext.fillers.ImageSpace` of the shapes world."""
    return ImageSpace(SHAPES_MEAN, SHAPES_STD)


class ShapesDataset(Dataset):
    """Shapes-world images with labels, per-class masks and per-object boxes.

    Images are generated once at construction (vectorised, about 1 s per 1,000 images
    at 64 x 64) and kept as uint8.

    Parameters
    ----------
    num_images : int
        Dataset size.
    image_size : int
        Image side S (>= 32; 64 by default, 224 for paper-scale runs).
    num_classes : int
        Number of shape classes K (2..8).
    seed : int
        Generation seed.
    split : {"train", "val", "test"}
        Adds a split-specific offset to ``seed`` so splits never overlap.
    normalize : bool
        Return images normalised with :data:`SHAPES_MEAN` / :data:`SHAPES_STD` (the
        classifier's input space); otherwise pixels in [0, 1].
    max_objects : int
        Up to this many objects per image (1-3 by default).

    Examples
    --------
    >>> ds = ShapesDataset(8, image_size=32, split="test")
    >>> sample = ds[0]
    >>> sample["image"].shape, sample["masks"].shape, sample["labels"].shape
    (torch.Size([3, 32, 32]), torch.Size([6, 32, 32]), torch.Size([6]))
    """

    def __init__(
        self,
        num_images: int = 1000,
        image_size: int = 64,
        num_classes: int = 6,
        seed: int = 0,
        split: str = "train",
        normalize: bool = True,
        max_objects: int = 3,
    ) -> None:
        if split not in SPLIT_OFFSETS:
            raise ValueError(f"`split` must be one of {tuple(SPLIT_OFFSETS)}, got {split!r}")
        self.num_classes = num_classes
        self.image_size = image_size
        self.class_names = SHAPE_NAMES[:num_classes]
        self.space = shapes_space() if normalize else ImageSpace()
        batch = generate_shapes(
            num_images,
            image_size,
            num_classes,
            seed=seed + SPLIT_OFFSETS[split],
            max_objects=max_objects,
        )
        self.images = batch.images
        self.instances = batch.instances
        self.object_classes = batch.object_classes
        self.labels = batch.labels(num_classes)
        self.boxes, self.box_labels = batch.boxes()

    def __len__(self) -> int:
        return self.images.shape[0]

    def class_masks(self, index: int) -> torch.Tensor:
        """``(K, S, S)`` float per-class masks of one image."""
        inst = self.instances[index]
        masks = torch.zeros(self.num_classes, *inst.shape)
        for j, cls in enumerate(self.object_classes[index].tolist()):
            if cls >= 0:
                masks[cls] += (inst == j + 1).float()
        return masks.clamp_(max=1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pixels = self.images[index].float().div_(255).unsqueeze(0)
        return {
            "image": self.space.to_inputs(pixels)[0],
            "labels": self.labels[index],
            "masks": self.class_masks(index),
            "boxes": self.boxes[index],
            "box_labels": self.box_labels[index],
            "index": index,
        }


def __getattr__(name: str) -> Any:
    # ShapesDataModule is a LightningDataModule: it lives in its own module so that the
    # Dataset above imports without Lightning (an optional extra), and is still found
    # here under its documented name (``captum_ext.data.shapes.ShapesDataModule``).
    if name == "ShapesDataModule":
        from captum_ext.data.shapes_datamodule import ShapesDataModule

        return ShapesDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
