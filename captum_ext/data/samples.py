"""The sample format shared by every dataset of the package, and its collate function.

A sample is a dict:

``image``
    ``(3, H, W)`` float, in the classifier's input space (normalised).
``labels``
    ``(K,)`` float multi-hot.
``masks`` (optional)
    ``(K, H, W)`` float per-class ground truth in {0, 1}.
``valid`` (optional)
    ``(H, W)`` bool, False where the ground truth is void (VOC's label 255).
``boxes``, ``box_labels`` (optional)
    ``(M, 4)`` float ``(x0, y0, x1, y1)`` pixel boxes and their ``(M,)`` int64 classes;
    padded with label -1 when batched.
``difficult`` (optional)
    ``(M,)`` bool, VOC's "difficult" flag.
``index``
    int, the sample's position in its dataset (a stable sample id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

_BOX_KEYS = {"boxes": 0.0, "box_labels": -1, "difficult": False}


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples, padding per-object entries to the largest count in the batch.

    Examples
    --------
    >>> a = {"image": torch.zeros(3, 4, 4), "boxes": torch.zeros(1, 4),
    ...      "box_labels": torch.tensor([2])}
    >>> b = {"image": torch.zeros(3, 4, 4), "boxes": torch.zeros(0, 4),
    ...      "box_labels": torch.zeros(0, dtype=torch.long)}
    >>> collate_samples([a, b])["box_labels"]
    tensor([[ 2],
            [-1]])
    """
    padded: dict[str, list[torch.Tensor]] = {}
    for key, fill in _BOX_KEYS.items():
        if key not in samples[0]:
            continue
        values = [s[key] for s in samples]
        count = max(1, max(v.shape[0] for v in values))
        padded[key] = [
            torch.cat([v, torch.full((count - v.shape[0], *v.shape[1:]), fill, dtype=v.dtype)])
            for v in values
        ]
    rest = [{k: v for k, v in s.items() if k not in padded} for s in samples]
    batch = default_collate(rest)
    for key, values in padded.items():
        batch[key] = torch.stack(values)
    return batch
