"""VOC-2007 and COCO-2014 on tiny fixture datasets written in the real on-disk formats."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from captum_ext.data.coco import COCODataModule, COCODataset, split_ids
from captum_ext.data.samples import collate_samples
from captum_ext.data.voc import VOC_CLASSES, VOCDataModule, VOCDataset
from captum_ext.fillers import ImageSpace

SIZE = 32


def _jpeg(path, width, height, colour=(200, 40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path, quality=95)


def _voc_xml(path, width, height, objects):
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = path.stem + ".jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for name, box, difficult in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "difficult").text = str(int(difficult))
        bnd = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bnd, tag).text = str(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path)


@pytest.fixture
def voc_root(tmp_path):
    """Three images: 000001 (cat + difficult dog, segmented), 000002 (person), 000003 test."""
    base = tmp_path / "VOCdevkit" / "VOC2007"
    # 000001: 64 x 48, a cat in x 1..32, y 1..24 (VOC 1-based inclusive), a difficult dog.
    _jpeg(base / "JPEGImages" / "000001.jpg", 64, 48)
    _voc_xml(
        base / "Annotations" / "000001.xml",
        64,
        48,
        [("cat", (1, 1, 32, 24), False), ("dog", (33, 25, 64, 48), True)],
    )
    seg = np.zeros((48, 64), dtype=np.uint8)
    seg[:24, :32] = VOC_CLASSES.index("cat") + 1
    seg[24, :] = 255  # a void border row
    png = Image.fromarray(seg, mode="P")
    png.putpalette([0, 0, 0, 128, 0, 0] * 128)
    (base / "SegmentationClass").mkdir(parents=True)
    png.save(base / "SegmentationClass" / "000001.png")
    _jpeg(base / "JPEGImages" / "000002.jpg", 40, 40, (10, 10, 10))
    _voc_xml(base / "Annotations" / "000002.xml", 40, 40, [("person", (11, 11, 30, 40), False)])
    _jpeg(base / "JPEGImages" / "000003.jpg", 50, 50)
    _voc_xml(base / "Annotations" / "000003.xml", 50, 50, [("car", (1, 1, 50, 50), False)])
    for folder, sets in (
        ("Main", {"train": ["000001", "000002"], "val": ["000002"], "test": ["000003"]}),
        ("Segmentation", {"train": ["000001"], "val": [], "test": []}),
    ):
        (base / "ImageSets" / folder).mkdir(parents=True)
        for name, ids in sets.items():
            (base / "ImageSets" / folder / f"{name}.txt").write_text("".join(i + "\n" for i in ids))
    return tmp_path


def test_voc_sample_labels_boxes_difficult(voc_root):
    ds = VOCDataset(voc_root, "train", image_size=SIZE)
    assert len(ds) == 2 and ds.num_classes == 20
    s = ds[0]
    assert s["image"].shape == (3, SIZE, SIZE)
    cat, dog = VOC_CLASSES.index("cat"), VOC_CLASSES.index("dog")
    assert s["labels"].nonzero().flatten().tolist() == sorted([cat, dog])
    assert s["box_labels"].tolist() == [cat, dog]
    assert s["difficult"].tolist() == [False, True]
    # (xmin - 1, ymin - 1, xmax, ymax) scaled by 32/64 and 32/48
    assert torch.allclose(s["boxes"][0], torch.tensor([0.0, 0.0, 16.0, 16.0]))
    assert torch.allclose(s["boxes"][1], torch.tensor([16.0, 16.0, 32.0, 32.0]))
    pixels = ImageSpace.imagenet().to_pixels(s["image"][None])[0]
    assert torch.allclose(pixels.mean(dim=(1, 2)), torch.tensor([200, 40, 40]) / 255, atol=0.02)
    no_difficult = VOCDataset(voc_root, "train", image_size=SIZE, use_difficult=False)[0]
    assert no_difficult["labels"].nonzero().flatten().tolist() == [cat]


def test_voc_masks_void_and_unsegmented_images(voc_root):
    ds = VOCDataset(voc_root, "train", image_size=SIZE)
    s = ds[0]
    cat = VOC_CLASSES.index("cat")
    assert s["masks"].shape == (20, SIZE, SIZE)
    assert s["masks"][cat, :16, :16].all() and s["masks"][cat].sum() == 16 * 16
    assert s["masks"].sum() == s["masks"][cat].sum()
    # the void row 24 of 48 lands on row 16 of 32 after nearest resizing
    assert not s["valid"][16].any() and s["valid"][:16].all() and s["valid"][17:].all()
    unsegmented = ds[1]
    assert unsegmented["masks"].sum() == 0 and not unsegmented["valid"].any()
    assert (
        VOCDataset(voc_root, "train", image_size=SIZE, with_masks=False)[0]
        .keys()
        .isdisjoint({"masks", "valid"})
    )


def test_voc_segmented_only_and_data_module(voc_root):
    assert VOCDataset(voc_root, "train", segmented_only=True).ids == ["000001"]
    dm = VOCDataModule(str(voc_root), image_size=SIZE, batch_size=2)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and "masks" not in batch
    assert batch["box_labels"].shape == (2, 2) and (batch["box_labels"] == -1).sum() == 1
    test = next(iter(dm.test_dataloader()))
    assert test["masks"].shape == (1, 20, SIZE, SIZE)


def test_voc_missing_dataset_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="not found"):
        VOCDataset(tmp_path, "train")


def _coco_json(path, images, annotations):
    # the 80 COCO category ids (1..90 without the 10 unused ones)
    ids = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]
    categories = [{"id": i, "name": f"cat{i}", "supercategory": "x"} for i in ids]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )


@pytest.fixture
def coco_root(tmp_path):
    """train2014: image 1 (polygon person + crowd RLE of category 90), 2 (compressed RLE), 3 (no
    annotation); val2014: image 10."""
    for split, ids in (("train2014", [1, 2, 3]), ("val2014", [10])):
        for i in ids:
            _jpeg(tmp_path / split / f"{i:012d}.jpg", 64, 32)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 32} for i in (1, 2, 3)]
    crowd = np.zeros((32, 64), dtype=np.uint8, order="F")
    crowd[16:, 32:] = 1  # bottom-right quarter
    counts = [int(c) for c in _uncompressed_counts(crowd)]
    compressed = np.zeros((32, 64), dtype=np.uint8)
    compressed[:, :16] = 1
    comp = mask_utils.encode(np.asfortranarray(compressed))
    annotations = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "area": 512.0,
            "bbox": [0, 0, 32, 16],
            "segmentation": [[0, 0, 32, 0, 32, 16, 0, 16]],
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 90,
            "iscrowd": 1,
            "area": float(crowd.sum()),
            "bbox": [32, 16, 32, 16],
            "segmentation": {"size": [32, 64], "counts": counts},
        },
        {
            "id": 3,
            "image_id": 2,
            "category_id": 3,
            "iscrowd": 0,
            "area": 512.0,
            "bbox": [0, 0, 16, 32],
            "segmentation": {"size": [32, 64], "counts": comp["counts"].decode()},
        },
    ]
    _coco_json(tmp_path / "annotations" / "instances_train2014.json", images, annotations)
    _coco_json(
        tmp_path / "annotations" / "instances_val2014.json",
        [{"id": 10, "file_name": f"{10:012d}.jpg", "width": 64, "height": 32}],
        [],
    )
    return tmp_path


def _uncompressed_counts(mask):
    """COCO's uncompressed RLE: run lengths of the column-major mask, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return counts


def test_coco_labels_masks_boxes(coco_root):
    ds = COCODataset(
        coco_root / "train2014",
        coco_root / "annotations" / "instances_train2014.json",
        image_size=SIZE,
    )
    assert ds.num_classes == 80 and len(ds) == 3
    person, last, car = 0, 79, 2  # category ids 1, 90, 3
    s = ds[0]
    assert s["labels"].nonzero().flatten().tolist() == [person, last]
    assert s["box_labels"].tolist() == [person, last] and s["difficult"].tolist() == [False, True]
    assert torch.allclose(
        s["boxes"], torch.tensor([[0.0, 0.0, 16.0, 16.0], [16.0, 16.0, 32.0, 32.0]])
    )
    assert s["masks"].shape == (80, SIZE, SIZE) and s["valid"].all()
    # polygon: top-left quarter (x < 32, y < 16 of 64 x 32) -> 16 x 16 of 32 x 32
    assert s["masks"][person, :16, :16].all() and s["masks"][person].sum() == 256
    assert s["masks"][last, 16:, 16:].all() and s["masks"][last].sum() == 256
    t = ds[1]
    assert t["labels"].nonzero().flatten().tolist() == [car]
    assert t["masks"][car, :, :8].all() and t["masks"][car].sum() == 8 * 32


def test_coco_image_without_annotations(coco_root):
    ds = COCODataset(
        coco_root / "train2014",
        coco_root / "annotations" / "instances_train2014.json",
        image_size=SIZE,
    )
    s = ds[2]
    assert s["labels"].sum() == 0 and s["boxes"].shape == (0, 4) and s["masks"].sum() == 0
    batch = collate_samples([ds[0], s])
    assert batch["box_labels"].tolist() == [[0, 79], [-1, -1]]


def test_coco_data_module_splits(coco_root):
    dm = COCODataModule(str(coco_root), image_size=SIZE, batch_size=4, val_fraction=1 / 3)
    dm.setup()
    assert sorted(dm.train_set.image_ids + dm.val_set.image_ids) == [1, 2, 3]
    assert len(dm.val_set) == 1 and dm.test_set.image_ids == [10]
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].shape == (2, 80) and "masks" not in batch
    assert next(iter(dm.test_dataloader()))["masks"].shape == (1, 80, SIZE, SIZE)
    with pytest.raises(ValueError, match="not in"):
        dm.train_set.subset([999])


def test_split_ids_is_deterministic():
    assert split_ids(range(20), 0.25, 3) == split_ids(range(20), 0.25, 3)
    assert split_ids(range(20), 0.25, 3) != split_ids(range(20), 0.25, 4)
