"""Images with random holes for self-supervised inpainter training (a folder or shapes world)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from captum_ext._utils.optional import require
from captum_ext.data.holes import HOLE_KINDS, random_holes
from captum_ext.data.shapes_world import generate_backgrounds

cv2 = require("cv2", extra="inpaint")
LightningDataModule = require("lightning.pytorch", extra="lightning").LightningDataModule

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (recursive, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"`image_dir` {str(root)!r} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"`image_dir` {str(root)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_image(path: Path, size: int) -> Tensor:
    """Read an image as ``(3, size, size)`` uint8 RGB: centre square crop, area resize."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {str(path)!r}")
    h, w = bgr.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    square = bgr[y : y + side, x : x + side]
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).contiguous()


class InpaintingDataset(Dataset):
    """uint8 images, each returned with a fresh random hole mask.

    Samples are dicts ``{"image": (3, S, S) float in [0, 1], "holes": (1, S, S) bool,
    "index": int}``. Training sets draw new holes at every access (from a generator
    seeded once); with ``fixed_holes=True`` (validation) sample ``i`` always gets the
    same holes. Random horizontal flips with ``flip=True``.

    Parameters
    ----------
    images : Tensor
        ``(N, 3, S, S)`` uint8.
    seed : int
        Seed of the holes (and flips).
    kinds : sequence of str
        Hole kinds, see :func:`captum_ext.data.holes.random_holes`.
    fixed_holes : bool
        Same holes for a sample at every access.
    flip : bool
        Random horizontal flips.

    Examples
    --------
    >>> ds = InpaintingDataset(generate_backgrounds(4, 32), fixed_holes=True)
    >>> sample = ds[0]
    >>> sample["image"].shape, sample["holes"].dtype
    (torch.Size([3, 32, 32]), torch.bool)
    """

    def __init__(
        self,
        images: Tensor,
        seed: int = 0,
        kinds: Sequence[str] = HOLE_KINDS,
        fixed_holes: bool = False,
        flip: bool = True,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"`images` must be (N, 3, S, S) uint8, got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images
        self.seed = seed
        self.kinds = tuple(kinds)
        self.fixed_holes = fixed_holes
        self.flip = flip
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng((self.seed, index)) if self.fixed_holes else self.rng
        image = self.images[index]
        if self.flip and rng.random() < 0.5:
            image = image.flip(-1)
        pixels = image.float().div(255)
        holes = random_holes(pixels.permute(1, 2, 0).numpy(), rng, self.kinds)
        return {"image": pixels, "holes": torch.from_numpy(holes).unsqueeze(0), "index": index}


class InpaintingDataModule(LightningDataModule):
    """Train / val images with random holes, from a folder or shapes-world backgrounds.

    Parameters
    ----------
    image_dir : str, optional
        A folder of images (searched recursively). Each image is centre-cropped to a
        square and resized to ``image_size``; the last ``num_val`` files (sorted) are the
        validation set. Default: object-free shapes-world backgrounds.
    image_size : int
        Side of the training images.
    num_train, num_val : int
        Number of generated backgrounds (ignored with ``image_dir``, which uses every
        file).
    kinds : sequence of str
        Hole kinds (default all of :data:`~captum_ext.data.holes.HOLE_KINDS`).
    batch_size : int
        Batch size of both loaders.
    num_workers : int
        DataLoader workers.
    seed : int
        Seed of the backgrounds and of the holes.

    Examples
    --------
    >>> dm = InpaintingDataModule(image_size=32, num_train=8, num_val=4, batch_size=4)
    >>> dm.setup("fit")
    >>> next(iter(dm.train_dataloader()))["holes"].shape
    torch.Size([4, 1, 32, 32])
    """

    def __init__(
        self,
        image_dir: str | None = None,
        image_size: int = 64,
        num_train: int = 20000,
        num_val: int = 500,
        kinds: Sequence[str] = HOLE_KINDS,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: InpaintingDataset | None = None
        self.val_set: InpaintingDataset | None = None

    def _images(self) -> tuple[Tensor, Tensor]:
        hp = self.hparams
        if hp.image_dir is None:
            train = generate_backgrounds(hp.num_train, hp.image_size, seed=hp.seed)
            val = generate_backgrounds(hp.num_val, hp.image_size, seed=hp.seed + 1_000_003)
            return train, val
        files = list_images(hp.image_dir)
        if len(files) < 2:
            raise ValueError(f"`image_dir` needs at least 2 images, found {len(files)}")
        num_val = min(hp.num_val, max(1, len(files) // 10))
        images = torch.stack([load_image(p, hp.image_size) for p in files])
        return images[:-num_val], images[-num_val:]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train, val = self._images()
            kinds = tuple(self.hparams.kinds)
            self.train_set = InpaintingDataset(train, self.hparams.seed, kinds)
            self.val_set = InpaintingDataset(
                val, self.hparams.seed + 1, kinds, fixed_holes=True, flip=False
            )

    def state_dict(self) -> dict[str, Any]:
        """The training holes' random state (Lightning saves it in checkpoints, so that a
        resumed fit draws the holes the uninterrupted fit would)."""
        if self.train_set is None:
            return {}
        return {"train_rng": self.train_set.rng.bit_generator.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "train_rng" in state_dict:
            self.setup("fit")
            self.train_set.rng.bit_generator.state = state_dict["train_rng"]

    def _loader(self, dataset: InpaintingDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
