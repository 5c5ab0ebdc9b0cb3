"""The fixed samples a callback explains: given, or drawn once from the evaluation data."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from captum_ext.utils import check_positive_int
from lightning_callbacks._batch import Samples, Unpack, unpack_batch


def _first_loader(loaders: Any) -> DataLoader | None:
    """The first ``DataLoader`` of a Lightning ``*_dataloaders`` value."""
    if loaders is None:
        return None
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders


def evaluation_loader(trainer: Any, pl_module: Any) -> DataLoader:
    """The loader the samples are drawn from.

    The test loader during ``trainer.test``, otherwise the validation loader: the one
    the running loop has loaded, else the one the datamodule (or the module) provides.
    """
    testing = bool(getattr(trainer, "testing", False))
    loader = _first_loader(trainer.test_dataloaders if testing else trainer.val_dataloaders)
    hook = "test_dataloader" if testing else "val_dataloader"
    error: Exception | None = None
    for source in (getattr(trainer, "datamodule", None), pl_module):
        if loader is not None:
            break
        if source is None or not callable(getattr(source, hook, None)):
            continue
        try:
            loader = _first_loader(getattr(source, hook)())
        except Exception as raised:  # Lightning's default hooks raise when not implemented
            error = raised
    if not isinstance(loader, DataLoader):
        raise RuntimeError(
            f"no {hook.replace('_', ' ')} to draw fixed samples from; pass `samples=` "
            "to the callback"
        ) from error
    return loader


class FixedSamples:
    """The samples a callback works on, the same at every logging event and across ranks.

    Either ``samples`` is given (a batch in any layout :func:`unpack_batch` reads), or
    ``num_samples`` indices are drawn once, with a generator seeded by ``seed``, from
    the evaluation dataset (not "the first batch", which differs per rank and epoch).
    The drawn indices are part of :meth:`state_dict`, so a resumed run explains the
    same samples.

    Parameters
    ----------
    num_samples : int
        Number of samples to draw.
    seed : int
        Seed of the draw.
    samples : any, optional
        Explicit samples (then nothing is drawn).
    unpack : callable, optional
        Turns a batch of another layout into one :func:`unpack_batch` reads.
    """

    def __init__(
        self,
        num_samples: int = 8,
        seed: int = 0,
        samples: Any = None,
        unpack: Unpack | None = None,
    ) -> None:
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.seed = seed
        self.unpack = unpack
        self.indices: list[int] | None = None
        self._cache: Samples | None = None
        if samples is not None:
            self._cache = unpack_batch(samples, unpack)
            self.num_samples = len(self._cache)

    @property
    def explicit(self) -> bool:
        return self.indices is None and self._cache is not None

    def draw(self, size: int) -> list[int]:
        """Draw ``min(num_samples, size)`` sorted indices out of ``range(size)``."""
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(size, generator=generator)[: self.num_samples]
        return sorted(chosen.tolist())

    def get(self, trainer: Any, pl_module: Any) -> Samples:
        """The samples (drawn and fetched from the evaluation loader on first use, then
        kept: later events, ``validate`` and ``test`` included, reuse them)."""
        if self._cache is not None:
            return self._cache
        loader = evaluation_loader(trainer, pl_module)
        dataset = loader.dataset
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise RuntimeError(
                "the evaluation dataset is not indexable (an IterableDataset?); pass "
                "`samples=` to the callback"
            )
        if self.indices is None:
            self.indices = self.draw(len(dataset))
        batch = loader.collate_fn([dataset[i] for i in self.indices])
        self._cache = unpack_batch(batch, self.unpack)
        return self._cache

    def state_dict(self) -> dict[str, Any]:
        if self.indices is None:
            return {}
        return {"indices": list(self.indices), "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "indices" in state and not self.explicit:
            self.indices = [int(i) for i in state["indices"]]
            self._cache = None
