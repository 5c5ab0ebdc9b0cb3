"""Write dataset-scale attributions from ``trainer.predict`` to sharded files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from captum_ext.utils import check_positive_int
from lightning_callbacks._compat import BasePredictionWriter
from lightning_callbacks.shards import (
    INDEX_FILE,
    META_FILE,
    PathLike,
    build_index,
    save_json,
    save_shard,
    shard_name,
)


class AttributionWriter(BasePredictionWriter):
    """Buffer per-batch attributions and write them in shards, one file per rank per
    ``batches_per_shard`` batches, then an index of every sample.

    Use it with :class:`~lightning_callbacks.AttributionModule` (or any module whose
    ``predict_step`` returns ``{"attribution", "target"[, "index"]}``) and
    ``trainer.predict(..., return_predictions=False)``. Sample ids are the dataset
    indices Lightning tracks for prediction writers (the batch's ``index`` entry when
    the dataset is iterable). Multi-GPU and multi-node runs come from Lightning's
    strategies: each rank writes its own shards and global rank 0 writes
    ``index.json`` once every rank is done. The layout is described in
    :mod:`lightning_callbacks.shards`; read it with
    :class:`~lightning_callbacks.AttributionShards`.

    Resuming: run the same prediction again into the same ``output_dir``. A shard
    file exists only when complete (written to a temporary name, then renamed), and
    :class:`AttributionModule` skips the batches of finished shards without computing
    them. The world size, ``batches_per_shard`` and the number of batches must match
    the first run's (checked against ``meta.json``).

    Parameters
    ----------
    output_dir : path
        Where the shards and the index go.
    batches_per_shard : int
        Batches per shard file.

    Examples
    --------
    >>> writer = AttributionWriter("runs/attributions", batches_per_shard=8)
    >>> # trainer = Trainer(callbacks=[writer]); trainer.predict(module, loader,
    >>> #                                                        return_predictions=False)
    """

    def __init__(self, output_dir: PathLike, batches_per_shard: int = 16) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.batches_per_shard = check_positive_int(batches_per_shard, "batches_per_shard")
        self._buffers: dict[tuple[int, int], list[dict[str, Tensor]]] = {}
        #: Shards written and shards skipped (already on disk) by this rank in this run.
        self.written: list[str] = []
        self.skipped: list[str] = []

    def shard_path(self, trainer: Any, batch_idx: int, dataloader_idx: int = 0) -> Path:
        """The file that holds batch ``batch_idx`` of this rank."""
        shard = batch_idx // self.batches_per_shard
        return self.output_dir / shard_name(dataloader_idx, trainer.global_rank, shard)

    def is_finished(self, trainer: Any, batch_idx: int, dataloader_idx: int = 0) -> bool:
        """Whether the batch's shard is already complete on disk (then it is skipped)."""
        finished = self.shard_path(trainer, batch_idx, dataloader_idx).exists()
        name = self.shard_path(trainer, batch_idx, dataloader_idx).name
        if finished and name not in self.skipped:
            self.skipped.append(name)
        return finished

    # ------------------------------------------------------------------ hooks
    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._buffers.clear()
        self.written.clear()
        self.skipped.clear()
        meta = {
            "world_size": trainer.world_size,
            "batches_per_shard": self.batches_per_shard,
            # None for iterable datasets of unknown length
            "num_batches": [
                None if n == float("inf") else int(n) for n in trainer.num_predict_batches
            ],
        }
        path = self.output_dir / META_FILE
        if path.exists():
            previous = json.loads(path.read_text())
            if previous != meta:
                raise ValueError(
                    f"{self.output_dir} holds a run with settings {previous}, but this run has "
                    f"{meta}; resume with the same settings or use a new `output_dir`"
                )
        elif trainer.is_global_zero:
            save_json(path, meta)

    def write_on_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        prediction: dict[str, Tensor] | None,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if prediction is None:  # a batch of a finished shard, skipped by the module
            return
        if batch_indices:  # Lightning tracks them for indexable datasets
            ids = torch.as_tensor(list(batch_indices), dtype=torch.long)
        elif "index" in prediction:
            ids = torch.as_tensor(prediction["index"], dtype=torch.long).cpu()
        else:
            raise ValueError(
                "no sample ids for this batch: the dataset is not indexable and the "
                "prediction has no 'index' entry"
            )
        entry = {
            "index": ids,
            "attribution": prediction["attribution"].detach().cpu(),
            "target": prediction["target"].detach().cpu(),
        }
        key = (dataloader_idx, batch_idx // self.batches_per_shard)
        self._buffers.setdefault(key, []).append(entry)
        if (batch_idx + 1) % self.batches_per_shard == 0:
            self._flush(trainer, key)

    def on_predict_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        for key in list(self._buffers):  # the last, partial shard of each dataloader
            self._flush(trainer, key)

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        trainer.strategy.barrier("attribution_writer_index")
        if trainer.is_global_zero:
            save_json(self.output_dir / INDEX_FILE, build_index(self.output_dir))
        trainer.strategy.barrier("attribution_writer_done")

    # ------------------------------------------------------------------ state
    def _flush(self, trainer: Any, key: tuple[int, int]) -> None:
        entries = self._buffers.pop(key)
        payload = {name: torch.cat([e[name] for e in entries]) for name in entries[0]}
        name = shard_name(key[0], trainer.global_rank, key[1])
        save_shard(self.output_dir / name, payload)
        self.written.append(name)
