"""A ``LightningDataModule`` base for datasets with train / val / test splits."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from captum_ext._utils.optional import require
from captum_ext.data.samples import collate_samples

LightningDataModule = require("lightning.pytorch", extra="lightning").LightningDataModule


class SplitDataModule(LightningDataModule):
    """Loaders over ``train_set`` / ``val_set`` / ``test_set``, batched with :func:`collate_samples`.

    Subclasses build the three datasets in :meth:`setup`; they must save ``batch_size``
    and ``num_workers`` as hyperparameters.
    """

    train_set: Dataset | None = None
    val_set: Dataset | None = None
    test_set: Dataset | None = None

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            collate_fn=collate_samples,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
