"""PASCAL VOC-2007 in the package's sample format (Stalder et al.'s VOC setting).

The data must be on disk in torchvision's layout (nothing is downloaded)::

    ROOT/VOCdevkit/VOC2007/
        JPEGImages/<id>.jpg
        Annotations/<id>.xml
        ImageSets/Main/{train,val,trainval,test}.txt
        ImageSets/Segmentation/{train,val,trainval,test}.txt   (segmented subset)
        SegmentationClass/<id>.png                              (palette PNG)

Multi-hot labels and boxes come from the XML annotations (``torchvision``'s
``VOCDetection`` parser), per-class masks from ``SegmentationClass`` where an image has
one; the PNG's void label 255 (object borders, "difficult" regions) becomes
``valid = False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import parse as parse_xml

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import VOCDetection, VOCSegmentation

from captum_ext.data.resize import image_to_inputs, resize_label_map, scale_boxes
from captum_ext.data.splits import SplitDataModule
from captum_ext.fillers.image_space import ImageSpace

#: The 20 VOC classes in the standard order (class index = position).
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
#: Label of unannotated pixels in VOC segmentation PNGs.
VOC_VOID = 255

PathLike = str | Path


class VOCDataset(Dataset):
    """VOC images with multi-hot labels, boxes, "difficult" flags and per-class masks.

    Samples follow :mod:`captum_ext.data.samples`: ``image`` (``(3, S, S)``, ImageNet
    normalised), ``labels`` (``(20,)``), ``boxes`` / ``box_labels`` / ``difficult``
    (``(M, ...)``, boxes in pixels of the resized image, ``x1``/``y1`` exclusive),
    ``index``; with ``with_masks``, ``masks`` (``(20, S, S)``) and ``valid``
    (``(S, S)``, False on void pixels, and everywhere for an image without a
    segmentation: its masks are all zero and must not be scored).

    Parameters
    ----------
    root : path
        Directory holding ``VOCdevkit``.
    image_set : {"train", "val", "trainval", "test"}
        Split list to read.
    year : str
        VOC year (``"2007"``, the paper's).
    image_size : int
        Side ``S`` of the resized images (224 in the paper).
    segmented_only : bool
        Only the images of ``ImageSets/Segmentation`` (e.g. the 210 test images of
        Stalder Table 2).
    with_masks : bool
        Return ``masks`` and ``valid``.
    use_difficult : bool
        Count objects flagged "difficult" in the labels (their boxes are always returned
        with the flag).
    normalize : bool
        ImageNet normalisation (the paper's); otherwise pixels in [0, 1].
    """

    def __init__(
        self,
        root: PathLike,
        image_set: str = "train",
        year: str = "2007",
        image_size: int = 224,
        segmented_only: bool = False,
        with_masks: bool = True,
        use_difficult: bool = True,
        normalize: bool = True,
    ) -> None:
        self.num_classes = len(VOC_CLASSES)
        self.class_names = VOC_CLASSES
        self.image_size = image_size
        self.with_masks = with_masks
        self.use_difficult = use_difficult
        self.space = ImageSpace.imagenet() if normalize else ImageSpace()
        detection = VOCDetection(str(root), year=year, image_set=image_set, download=False)
        voc_root = Path(detection.images[0]).parents[1] if detection.images else None
        if segmented_only:
            segmentation = VOCSegmentation(
                str(root), year=year, image_set=image_set, download=False
            )
            ids = [Path(p).stem for p in segmentation.images]
        else:
            ids = [Path(p).stem for p in detection.images]
        self.ids: list[str] = ids
        self.voc_root = (
            voc_root if voc_root is not None else Path(root) / "VOCdevkit" / f"VOC{year}"
        )

    def __len__(self) -> int:
        return len(self.ids)

    def annotation(self, index: int) -> dict[str, Any]:
        """The parsed XML annotation of sample ``index`` (torchvision's dict format)."""
        path = self.voc_root / "Annotations" / f"{self.ids[index]}.xml"
        return VOCDetection.parse_voc_xml(parse_xml(path).getroot())["annotation"]

    def _objects(self, annotation: dict[str, Any], original: tuple) -> dict[str, torch.Tensor]:
        objects = annotation.get("object", [])
        names = [obj["name"] for obj in objects]
        unknown = sorted(set(names) - set(VOC_CLASSES))
        if unknown:
            raise ValueError(f"unknown VOC class(es) {unknown} in {annotation.get('filename')}")
        classes = torch.tensor([VOC_CLASSES.index(n) for n in names], dtype=torch.long)
        difficult = torch.tensor(
            [obj.get("difficult", "0") == "1" for obj in objects], dtype=torch.bool
        )
        # VOC boxes are 1-based inclusive pixel indices: (xmin - 1, ymin - 1, xmax, ymax).
        boxes = torch.tensor(
            [
                [
                    float(obj["bndbox"][k]) - (1.0 if k in ("xmin", "ymin") else 0.0)
                    for k in ("xmin", "ymin", "xmax", "ymax")
                ]
                for obj in objects
            ],
            dtype=torch.float32,
        ).reshape(-1, 4)
        labels = torch.zeros(self.num_classes)
        counted = classes if self.use_difficult else classes[~difficult]
        labels[counted] = 1.0
        return {
            "labels": labels,
            "boxes": scale_boxes(boxes, original, self.image_size),
            "box_labels": classes,
            "difficult": difficult,
        }

    def _masks(self, index: int) -> dict[str, torch.Tensor]:
        size = self.image_size
        path = self.voc_root / "SegmentationClass" / f"{self.ids[index]}.png"
        if not path.exists():
            return {
                "masks": torch.zeros(self.num_classes, size, size),
                "valid": torch.zeros(size, size, dtype=torch.bool),
            }
        with Image.open(path) as png:
            if png.mode != "P":
                raise ValueError(f"{path} must be a palette (class-index) PNG, got mode {png.mode}")
            label_map = resize_label_map(np.array(png), size).long()
        classes = torch.arange(1, self.num_classes + 1).view(-1, 1, 1)
        return {"masks": (label_map == classes).float(), "valid": label_map != VOC_VOID}

    def __getitem__(self, index: int) -> dict[str, Any]:
        with Image.open(self.voc_root / "JPEGImages" / f"{self.ids[index]}.jpg") as image:
            original = image.size
            sample = {"image": image_to_inputs(image, self.image_size, self.space)}
        sample.update(self._objects(self.annotation(index), original))
        if self.with_masks:
            sample.update(self._masks(index))
        sample["index"] = index
        return sample


class VOCDataModule(SplitDataModule):
    """VOC-2007 train / val / test splits (the paper: train, val for model selection, test).

    Parameters
    ----------
    root : path
        Directory holding ``VOCdevkit``.
    year : str
        VOC year.
    image_size : int
        Side of the resized images.
    batch_size : int
        Batch size of every loader (16 in the paper).
    num_workers : int
        DataLoader workers.
    train_set, val_set, test_set : str
        Image sets of the splits.
    test_segmented_only : bool
        Restrict the test split to images with a segmentation (Table 2's 210 images).
    masks_for_fit : bool
        Also return masks for the train and val splits (the test split always has them).
    """

    def __init__(
        self,
        root: str = "data/voc",
        year: str = "2007",
        image_size: int = 224,
        batch_size: int = 16,
        num_workers: int = 0,
        train_set: str = "train",
        val_set: str = "val",
        test_set: str = "test",
        test_segmented_only: bool = False,
        masks_for_fit: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()

    def _dataset(
        self, image_set: str, with_masks: bool, segmented_only: bool = False
    ) -> VOCDataset:
        hp = self.hparams
        return VOCDataset(hp.root, image_set, hp.year, hp.image_size, segmented_only, with_masks)

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset(hp.train_set, hp.masks_for_fit)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset(hp.val_set, hp.masks_for_fit)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._dataset(hp.test_set, True, hp.test_segmented_only)
