"""The shapes world's train / val / test splits as a ``LightningDataModule``."""

from __future__ import annotations

from captum_ext.data.shapes import ShapesDataset
from captum_ext.data.splits import SplitDataModule


class ShapesDataModule(SplitDataModule):
    """Train / val / test splits of the shapes world.

    Parameters
    ----------
    image_size, num_classes, seed
        As :class:`ShapesDataset`.
    num_train, num_val, num_test : int
        Split sizes.
    batch_size : int
        Batch size of every loader.
    num_workers : int
        DataLoader workers (0 is fine: samples are precomputed).
    max_objects : int
        Up to this many objects per image.
    train_max_objects : int, optional
        Up to this many objects per *training* image (default ``max_objects``); e.g. 1
        trains on single-object scenes while validating and testing on the usual ones.

    Examples
    --------
    >>> dm = ShapesDataModule(num_train=16, num_val=8, num_test=8, image_size=32, batch_size=4)
    >>> dm.setup("fit")
    >>> next(iter(dm.train_dataloader()))["image"].shape
    torch.Size([4, 3, 32, 32])
    """

    def __init__(
        self,
        image_size: int = 64,
        num_classes: int = 6,
        seed: int = 0,
        num_train: int = 10000,
        num_val: int = 1000,
        num_test: int = 1000,
        batch_size: int = 64,
        num_workers: int = 0,
        max_objects: int = 3,
        train_max_objects: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: ShapesDataset | None = None
        self.val_set: ShapesDataset | None = None
        self.test_set: ShapesDataset | None = None

    def _dataset(self, split: str, size: int) -> ShapesDataset:
        hp = self.hparams
        objects = hp.max_objects
        if split == "train" and hp.train_max_objects is not None:
            objects = hp.train_max_objects
        return ShapesDataset(
            size, hp.image_size, hp.num_classes, hp.seed, split, max_objects=objects
        )

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset("train", self.hparams.num_train)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset("val", self.hparams.num_val)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._dataset("test", self.hparams.num_test)
