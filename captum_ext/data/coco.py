"""MS COCO-2014 in the package's sample format (Stalder et al.'s COCO setting).

The data must be on disk in the official layout (nothing is downloaded)::

    ROOT/train2014/*.jpg
    ROOT/val2014/*.jpg
    ROOT/annotations/instances_train2014.json
    ROOT/annotations/instances_val2014.json

Images and annotations are read with torchvision's ``CocoDetection``; per-class masks
are the union of each class's instance masks decoded with pycocotools' ``annToMask``
(polygons, RLE and crowd RLE). Classes are the annotation file's categories in id
order (80 for COCO). Images without annotations are kept, with empty labels and boxes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.datasets import CocoDetection

from captum_ext._utils.optional import require
from captum_ext.data.resize import image_to_inputs, resize_label_map, scale_boxes
from captum_ext.data.splits import SplitDataModule
from captum_ext.fillers.image_space import ImageSpace

PathLike = str | Path


class COCODataset(Dataset):
    """COCO images with multi-hot labels, boxes and per-class masks.

    Samples follow :mod:`captum_ext.data.samples`: ``image`` (``(3, S, S)``, ImageNet
    normalised), ``labels`` (``(K,)``, K = number of categories), ``boxes`` /
    ``box_labels`` (pixels of the resized image), ``difficult`` (COCO's ``iscrowd``
    flag), ``index``; with ``with_masks``, ``masks`` (``(K, S, S)``) and ``valid`` (all
    True: COCO annotates every object of its categories).

    Parameters
    ----------
    image_dir : path
        Directory of the images (e.g. ``ROOT/val2014``).
    annotation_file : path
        The ``instances_*.json`` file.
    image_size : int
        Side ``S`` of the resized images (224 in the paper).
    with_masks : bool
        Return ``masks`` and ``valid`` (``K x S x S`` floats per image: 16 MB at 224 for
        80 classes, so off for training).
    normalize : bool
        ImageNet normalisation (the paper's); otherwise pixels in [0, 1].
    """

    def __init__(
        self,
        image_dir: PathLike,
        annotation_file: PathLike,
        image_size: int = 224,
        with_masks: bool = True,
        normalize: bool = True,
    ) -> None:
        require("pycocotools", extra="coco")  # CocoDetection reads the annotations with it
        self.source = CocoDetection(str(image_dir), str(annotation_file))
        coco = self.source.coco
        self.category_ids: list[int] = sorted(coco.getCatIds())
        self.class_names = tuple(coco.cats[c]["name"] for c in self.category_ids)
        self.num_classes = len(self.category_ids)
        self._class_of = {cat: k for k, cat in enumerate(self.category_ids)}
        self.positions = list(range(len(self.source.ids)))
        self.image_size = image_size
        self.with_masks = with_masks
        self.space = ImageSpace.imagenet() if normalize else ImageSpace()

    def subset(self, image_ids: Sequence[int]) -> COCODataset:
        """The same dataset restricted to ``image_ids`` (shares the parsed annotation file)."""
        out = copy.copy(self)
        position = {image_id: i for i, image_id in enumerate(self.source.ids)}
        missing = [i for i in image_ids if i not in position]
        if missing:
            raise ValueError(f"image ids {missing[:5]} are not in the annotation file")
        out.positions = [position[i] for i in image_ids]
        return out

    @property
    def image_ids(self) -> list[int]:
        """COCO ids of the samples, in sample order."""
        return [self.source.ids[p] for p in self.positions]

    def __len__(self) -> int:
        return len(self.positions)

    def _objects(
        self, annotations: list[dict[str, Any]], original: tuple
    ) -> dict[str, torch.Tensor]:
        classes = torch.tensor(
            [self._class_of[a["category_id"]] for a in annotations], dtype=torch.long
        )
        boxes = torch.tensor(
            [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations)],
            dtype=torch.float32,
        ).reshape(-1, 4)
        labels = torch.zeros(self.num_classes)
        labels[classes] = 1.0
        return {
            "labels": labels,
            "boxes": scale_boxes(boxes, original, self.image_size),
            "box_labels": classes,
            "difficult": torch.tensor(
                [bool(a.get("iscrowd", 0)) for a in annotations], dtype=torch.bool
            ),
        }

    def _masks(self, annotations: list[dict[str, Any]], original: tuple) -> dict[str, torch.Tensor]:
        width, height = original
        # Union per class at the original resolution, then one nearest-neighbour resize.
        union = np.zeros((self.num_classes, height, width), dtype=np.uint8)
        for ann in annotations:
            union[self._class_of[ann["category_id"]]] |= self.source.coco.annToMask(ann)
        size = self.image_size
        masks = resize_label_map(union, size) if self.num_classes else torch.zeros(0, size, size)
        return {"masks": masks.float(), "valid": torch.ones(size, size, dtype=torch.bool)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, annotations = self.source[self.positions[index]]
        original = image.size
        sample: dict[str, Any] = {"image": image_to_inputs(image, self.image_size, self.space)}
        sample.update(self._objects(annotations, original))
        if self.with_masks:
            sample.update(self._masks(annotations, original))
        sample["index"] = index
        return sample


def split_ids(image_ids: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split ids at random into ``(1 - fraction, fraction)`` parts, deterministically.

    Examples
    --------
    >>> train, val = split_ids(range(10), 0.2, seed=0)
    >>> len(train), len(val), sorted(train + val) == list(range(10))
    (8, 2, True)
    """
    ids = list(image_ids)
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(len(ids) * fraction))
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


class COCODataModule(SplitDataModule):
    """COCO-2014 splits as in the paper: 90% of train2014 / the other 10% / val2014 as test.

    Parameters
    ----------
    root : path
        Directory holding ``train2014``, ``val2014`` and ``annotations``.
    year : str
        COCO year of the file names.
    image_size : int
        Side of the resized images.
    batch_size : int
        Batch size of every loader (16 in the paper).
    num_workers : int
        DataLoader workers.
    val_fraction : float
        Fraction of the training images held out for validation.
    seed : int
        Seed of the train/val split.
    test_size : int, optional
        Use only a random subset of this many test images (the paper's Table 2 used 1,000).
    masks_for_fit : bool
        Also return masks for the train and val splits (the test split always has them).
    """

    def __init__(
        self,
        root: str = "data/coco",
        year: str = "2014",
        image_size: int = 224,
        batch_size: int = 16,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        test_size: int | None = None,
        masks_for_fit: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()

    def _paths(self, split: str) -> tuple[Path, Path]:
        root, year = Path(self.hparams.root), self.hparams.year
        return root / f"{split}{year}", root / "annotations" / f"instances_{split}{year}.json"

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in (None, "fit", "validate") and self.val_set is None:
            full = COCODataset(*self._paths("train"), hp.image_size, with_masks=hp.masks_for_fit)
            train_ids, val_ids = split_ids(full.image_ids, hp.val_fraction, hp.seed)
            self.train_set, self.val_set = full.subset(train_ids), full.subset(val_ids)
        if stage in (None, "test", "predict") and self.test_set is None:
            test = COCODataset(*self._paths("val"), hp.image_size)
            if hp.test_size is not None and hp.test_size < len(test):
                _, ids = split_ids(test.image_ids, hp.test_size / len(test), hp.seed)
                test = test.subset(ids)
            self.test_set = test
