"""A LightningModule that turns ``trainer.predict`` into dataset-scale attribution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from captum_ext.utils import check_choice
from lightning_callbacks._attribution import AttributionFn, AttributionSpec, MethodLike
from lightning_callbacks._batch import TargetPolicy, Unpack, check_target_policy, unpack_batch
from lightning_callbacks._compat import LightningModule
from lightning_callbacks.prediction_writer import AttributionWriter

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class AttributionModule(LightningModule):
    """Wrap a classifier so that ``predict_step`` returns attributions of each batch.

    Works with any attribution method (Captum's or captum-ext's) and inside
    Lightning's prediction loop, which runs under ``torch.inference_mode``: the
    attribution runs with inference mode off, gradients on, the network in eval mode
    with frozen parameters, and everything restored afterwards. With an
    :class:`~lightning_callbacks.AttributionWriter` attached, batches of shards that
    are already on disk are skipped (returns ``None``) without computing them.

    Parameters
    ----------
    model : nn.Module
        The classifier, returning ``(N, K)`` outputs.
    method : str or callable, optional
        Attribution class, class path or bare name, or callable ``model -> attributor``.
    init_args, attribute_args : dict, optional
        Constructor / ``attribute`` arguments of the method (a string ``layer`` names a
        submodule of ``model``).
    attribution_fn : callable or str, optional
        Instead of ``method``: ``fn(module, images, targets) -> maps``.
    target : {"predicted", "label"} or int
        The class explained per sample.
    dtype : {"float32", "float16", "bfloat16"}
        Storage dtype of the maps.
    unpack : callable, optional
        Turns a batch of another layout into a sample dict or ``(images, labels)``.

    Examples
    --------
    >>> from captum_ext.models.shapes_classifier import ShapesClassifier
    >>> module = AttributionModule(ShapesClassifier(width=4), "Saliency")
    >>> out = module.predict_step({"image": torch.rand(2, 3, 32, 32)}, 0)
    >>> out["attribution"].shape, out["target"].shape
    (torch.Size([2, 1, 32, 32]), torch.Size([2]))
    """

    def __init__(
        self,
        model: nn.Module,
        method: MethodLike | None = None,
        init_args: dict[str, Any] | None = None,
        attribute_args: dict[str, Any] | None = None,
        attribution_fn: AttributionFn | None = None,
        target: TargetPolicy = "predicted",
        dtype: str = "float32",
        unpack: Unpack | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.spec = AttributionSpec(method, init_args, attribute_args, attribution_fn, "model")
        self.target = check_target_policy(target)
        self.dtype_name = check_choice(dtype, "dtype", DTYPES)
        self.unpack = unpack

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def _finished(self, batch_idx: int, dataloader_idx: int) -> bool:
        trainer = self._trainer
        if trainer is None:
            return False
        writers = [cb for cb in trainer.callbacks if isinstance(cb, AttributionWriter)]
        return any(w.is_finished(trainer, batch_idx, dataloader_idx) for w in writers)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor] | None:
        """``{"attribution": (N, 1, H, W), "target": (N,)[, "index": (N,)]}``, or
        ``None`` for a batch whose shard is already written."""
        if self._finished(batch_idx, dataloader_idx):
            return None
        _, targets, maps, _ = self.spec.explain(self, unpack_batch(batch, self.unpack), self.target)
        out = {"attribution": maps.to(DTYPES[self.dtype_name]), "target": targets}
        if isinstance(batch, Mapping) and "index" in batch:
            out["index"] = torch.as_tensor(batch["index"])
        return out
