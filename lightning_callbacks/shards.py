"""On-disk layout of dataset-scale attributions, and a reader for it.

``output_dir`` holds

* shard files ``dl<d>-rank<r>-shard<s>.pt``: the attributions of batches
  ``s * B .. (s + 1) * B - 1`` of dataloader ``d`` on rank ``r`` (``B`` =
  ``batches_per_shard``), a dict of tensors ``index`` ``(n,)`` (sample ids),
  ``attribution`` ``(n, 1, H, W)`` and ``target`` ``(n,)``, loadable with
  ``torch.load(weights_only=True)``;
* ``meta.json``: the settings a resumed run must share (world size, shard size,
  batches per dataloader);
* ``index.json``: ``{"shards": [file, ...], "samples": {"<d>": {"<id>": [shard, row]}}}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor

PathLike = str | Path
INDEX_FILE = "index.json"
META_FILE = "meta.json"
SHARD_GLOB = "dl*-rank*-shard*.pt"


def shard_name(dataloader_idx: int, rank: int, shard: int) -> str:
    """File name of one shard.

    Examples
    --------
    >>> shard_name(0, 1, 12)
    'dl0-rank0001-shard000012.pt'
    """
    return f"dl{dataloader_idx}-rank{rank:04d}-shard{shard:06d}.pt"


def _atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write to a temporary file in the same directory, flush it to disk, then rename
    it over ``path`` (an atomic replace): a file that exists is complete, whenever the
    writing process is killed. A killed write leaves only the temporary file, which the
    next write of the same file overwrites."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())  # the data is on disk before the name points to it
    os.replace(tmp, path)


def save_shard(path: Path, payload: dict[str, Tensor]) -> None:
    """Write one shard atomically."""
    _atomic_write(path, lambda file: torch.save(payload, file))


def save_json(path: Path, value: Any) -> None:
    """Write a JSON file atomically."""
    _atomic_write(path, lambda file: file.write(json.dumps(value).encode()))


def build_index(output_dir: PathLike) -> dict[str, Any]:
    """Map every sample id to its shard and row by reading the shards' ``index`` tensors.

    Shards are memory-mapped, so only their small ``index`` tensors are read.
    Raises ``ValueError`` if a sample id of a dataloader appears twice.
    """
    output_dir = Path(output_dir)
    shards = sorted(p.name for p in output_dir.glob(SHARD_GLOB))
    samples: dict[str, dict[str, list[int]]] = {}
    for number, name in enumerate(shards):
        dataloader = name.split("-", 1)[0][2:]
        ids = torch.load(output_dir / name, map_location="cpu", weights_only=True, mmap=True)
        per_loader = samples.setdefault(dataloader, {})
        for row, sample_id in enumerate(ids["index"].tolist()):
            key = str(sample_id)
            if key in per_loader:
                raise ValueError(
                    f"sample {sample_id} of dataloader {dataloader} is in both "
                    f"{shards[per_loader[key][0]]} and {name}"
                )
            per_loader[key] = [number, row]
    return {"shards": shards, "samples": samples}


class AttributionShards:
    """Read attributions written by :class:`~lightning_callbacks.AttributionWriter`.

    Parameters
    ----------
    output_dir : path
        The writer's output directory (it must hold ``index.json``).
    dataloader_idx : int
        Which prediction dataloader's samples to read.

    Examples
    --------
    >>> shards = AttributionShards("runs/attributions")  # doctest: +SKIP
    >>> shards[17]["attribution"].shape  # doctest: +SKIP
    torch.Size([1, 64, 64])
    """

    def __init__(self, output_dir: PathLike, dataloader_idx: int = 0) -> None:
        self.output_dir = Path(output_dir)
        index_path = self.output_dir / INDEX_FILE
        if not index_path.exists():
            raise FileNotFoundError(f"no {INDEX_FILE} in {self.output_dir}; did the run finish?")
        index = json.loads(index_path.read_text())
        self.shards: list[str] = index["shards"]
        self._samples = index["samples"].get(str(dataloader_idx), {})
        self._cache: tuple[int, dict[str, Tensor]] = (-1, {})

    def __len__(self) -> int:
        return len(self._samples)

    def __contains__(self, sample_id: int) -> bool:
        return str(sample_id) in self._samples

    def sample_ids(self) -> list[int]:
        """Sorted ids of every sample written."""
        return sorted(int(k) for k in self._samples)

    def _shard(self, number: int) -> dict[str, Tensor]:
        if self._cache[0] != number:
            path = self.output_dir / self.shards[number]
            self._cache = (number, torch.load(path, map_location="cpu", weights_only=True))
        return self._cache[1]

    def __getitem__(self, sample_id: int) -> dict[str, Tensor]:
        """``{"attribution": (1, H, W), "target": ()}`` of one sample."""
        if str(sample_id) not in self._samples:
            raise KeyError(f"sample {sample_id} was not written")
        number, row = self._samples[str(sample_id)]
        shard = self._shard(number)
        return {"attribution": shard["attribution"][row], "target": shard["target"][row]}

    def __iter__(self) -> Iterator[int]:
        return iter(self.sample_ids())
