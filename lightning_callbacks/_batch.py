"""Batches of any common layout, reduced to the tensors the callbacks need.

A batch is the package's sample dict (``image``, ``labels``, ``masks``, ``boxes``,
``box_labels``; see :mod:`captum_ext.data.samples`), an ``(images, labels, ...)``
tuple or list, or a bare image tensor. Other layouts go through a user ``unpack``
callable that returns one of these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from captum_ext.utils import check_inputs, format_target

#: ``target=`` policies of the callbacks (an int is a fixed class).
TargetPolicy = str | int
TARGET_POLICIES = ("label", "predicted")

Unpack = Callable[[Any], Any]


@dataclass
class Samples:
    """Images with their optional labels and ground truth.

    Attributes
    ----------
    images : Tensor
        ``(N, C, H, W)`` inputs of the classifier.
    labels : Tensor, optional
        ``(N,)`` integer classes or ``(N, K)`` multi-hot labels.
    masks : Tensor, optional
        ``(N, K, H, W)`` per-class ground-truth masks.
    boxes, box_labels : Tensor, optional
        ``(N, M, 4)`` pixel boxes ``(x0, y0, x1, y1)`` and their ``(N, M)`` classes
        (-1 for padding).
    """

    images: Tensor
    labels: Tensor | None = None
    masks: Tensor | None = None
    boxes: Tensor | None = None
    box_labels: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Samples:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: fn(v) for k, v in values.items() if v is not None})

    def to(self, device: torch.device) -> Samples:
        """Copies on ``device``, always new tensors (never inference tensors when
        called outside inference mode)."""
        return self._map(lambda t: t.to(device, copy=True))

    def select(self, index: Tensor) -> Samples:
        """The samples at ``index`` (a 1-d long tensor)."""
        return self._map(lambda t: t[index.to(t.device)])


def unpack_batch(batch: Any, unpack: Unpack | None = None) -> Samples:
    """Read a batch as :class:`Samples`.

    Parameters
    ----------
    batch : dict, tuple, list or Tensor
        A sample dict (``image`` or ``images`` key, optional ``labels`` / ``label``,
        ``masks``, ``boxes``, ``box_labels``), an ``(images, labels, ...)`` sequence or
        an image tensor.
    unpack : callable, optional
        Applied to ``batch`` first, for other layouts.

    Examples
    --------
    >>> s = unpack_batch((torch.zeros(2, 3, 8, 8), torch.tensor([1, 0])))
    >>> s.images.shape, s.labels.tolist()
    (torch.Size([2, 3, 8, 8]), [1, 0])
    """
    if unpack is not None:
        batch = unpack(batch)
    if isinstance(batch, Tensor):
        samples = Samples(batch)
    elif isinstance(batch, Mapping):
        key = "image" if "image" in batch else "images"
        if key not in batch:
            raise ValueError(
                "`batch` is a dict without an 'image' (or 'images') entry; pass `unpack=` "
                f"to read it (keys: {sorted(batch)})"
            )
        labels = batch.get("labels", batch.get("label"))
        samples = Samples(
            batch[key],
            labels=torch.as_tensor(labels) if labels is not None else None,
            masks=batch.get("masks"),
            boxes=batch.get("boxes"),
            box_labels=batch.get("box_labels"),
        )
    elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
        samples = Samples(batch[0], labels=labels)
    else:
        raise TypeError(
            "`batch` must be a sample dict, an (images, labels) sequence or an image "
            f"tensor, got {type(batch).__name__}; pass `unpack=` to read other layouts"
        )
    check_inputs(samples.images, "batch images")
    return samples


def check_target_policy(target: object) -> TargetPolicy:
    """Validate a callback's ``target=`` argument."""
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise TypeError(
            f"`target` must be 'label', 'predicted' or an int, got {type(target).__name__}"
        )
    if isinstance(target, str) and target not in TARGET_POLICIES:
        raise ValueError(f"`target` must be 'label', 'predicted' or an int, got {target!r}")
    if isinstance(target, int) and target < 0:
        raise ValueError(f"`target` must be >= 0, got {target}")
    return target


def select_targets(samples: Samples, logits: Tensor, policy: TargetPolicy) -> Tensor:
    """The class to attribute for each sample, ``(N,)`` long.

    ``"predicted"``: the top-scoring class. ``"label"``: the label; for multi-hot
    labels the present class the model scores highest (the predicted class when no
    class is present). An int: that class for every sample.

    Examples
    --------
    >>> s = Samples(torch.zeros(2, 3, 4, 4), labels=torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    >>> select_targets(s, torch.tensor([[0.1, 0.9], [0.8, 0.2]]), "label").tolist()
    [1, 0]
    """
    n, num_classes = logits.shape
    if policy == "predicted":
        return logits.argmax(dim=1)
    if policy != "label":
        return format_target(policy, n, num_classes, logits.device)
    labels = samples.labels
    if labels is None:
        raise ValueError("`target='label'` needs labels in the batch; use 'predicted' or an int")
    labels = labels.to(logits.device)
    if labels.dim() == 1:
        return format_target(labels, n, num_classes, logits.device)
    if labels.shape != logits.shape:
        raise ValueError(
            f"multi-hot labels of shape {tuple(labels.shape)} do not match the model's "
            f"outputs {tuple(logits.shape)}"
        )
    present = labels > 0.5
    scored = torch.where(present, logits, torch.finfo(logits.dtype).min)
    return torch.where(present.any(dim=1), scored.argmax(dim=1), logits.argmax(dim=1))
