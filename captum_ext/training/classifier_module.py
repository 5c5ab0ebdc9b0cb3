"""Lightning module that trains the shapes-world classifier with masking-robust augmentation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor
from torchmetrics.classification import MultilabelExactMatch

from captum_ext.data.null_images import null_images, replace_with_null_images
from captum_ext.data.object_masking import default_dilation, dilate, keep_only, keep_random_objects
from captum_ext.data.shapes import shapes_space
from captum_ext.models.shapes_classifier import build_shapes_world_classifier
from captum_ext.training._random_state import load_random_state, save_random_state
from captum_ext.training._schedules import adamw_one_cycle


class ClassifierModule(LightningModule):
    """Multi-label classifier training (BCE) with the masking-robust augmentation.

    A plain classifier cannot classify object-only images (everything but the objects
    filled with the mean colour), which makes a learned Explainer untrainable. With
    probability ``robust_p`` per image, a random non-empty subset of the present classes
    is kept (masks dilated), the rest filled with the mean colour, and the labels
    restricted to the kept classes. With probability ``null_p`` an image is replaced by
    an object-free one (background texture, noise or a flat colour) labelled "no class",
    so that the references attribution methods use (noise, constants) carry no evidence.
    Horizontal flips are applied too.

    Validation logs clean and object-only exact-match, and the fraction of null images
    with no positive label.

    Parameters
    ----------
    num_classes : int
        Number of classes K.
    width : int
        Width of :class:`~captum_ext.models.ShapesClassifier`.
    lr : float
        Peak learning rate of the one-cycle AdamW schedule.
    weight_decay : float
        AdamW weight decay.
    robust_p : float
        Probability of the object-only augmentation per image.
    null_p : float
        Probability of replacing an image by an object-free one with empty labels (0
        turns the negatives off; the shipped ``shapes_classifier`` was trained with 0.1).
    dilation : int, optional
        Dilation radius of the kept masks (default: 1 px per 32 px of image side).
    seed : int
        Seed of the augmentation's random draws.
    activation : {"relu", "silu", "gelu"}
        The classifier's non-linearity (the ``shapes_classifier_silu`` preset trains the
        SiLU variant with the same recipe).
    arch : {"shapes", "resnet18"}
        :class:`~captum_ext.models.ShapesClassifier` (``width``, ``activation``) or the
        held-out architecture, torchvision's ResNet-18 behind an ImageNet-style
        normalisation (:class:`~captum_ext.models.shapes_classifier.ImageNetNormalized`;
        the ``shapes_classifier_heldout`` preset).

    Examples
    --------
    >>> module = ClassifierModule(num_classes=6)
    >>> module(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 6])
    """

    def __init__(
        self,
        num_classes: int = 6,
        width: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        robust_p: float = 0.5,
        null_p: float = 0.1,
        dilation: int | None = None,
        seed: int = 0,
        activation: str = "relu",
        arch: str = "shapes",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_shapes_world_classifier(**self.export_config())
        self.generator = torch.Generator().manual_seed(seed)
        self.val_clean = MultilabelExactMatch(num_labels=num_classes)
        self.val_object_only = MultilabelExactMatch(num_labels=num_classes)
        self.val_null = MultilabelExactMatch(num_labels=num_classes)

    def export_config(self) -> dict[str, Any]:
        """Arguments that rebuild :attr:`model`."""
        if self.hparams.arch != "shapes":
            return {"arch": self.hparams.arch, "num_classes": self.hparams.num_classes}
        return {
            "num_classes": self.hparams.num_classes,
            "width": self.hparams.width,
            "activation": self.hparams.activation,
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_random_state(checkpoint, self.generator)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_random_state(self, checkpoint, self.generator)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def on_fit_start(self) -> None:
        # channels_last convolutions are ~30% faster on CPU and on tensor-core GPUs.
        self.model.to(memory_format=torch.channels_last)

    def _radius(self, images: Tensor) -> int:
        if self.hparams.dilation is not None:
            return self.hparams.dilation
        return default_dilation(images.shape[-1])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images, labels, masks = batch["image"], batch["labels"], batch["masks"]
        images, labels = keep_random_objects(
            images, labels, masks, self.hparams.robust_p, self._radius(images), self.generator
        )
        if self.hparams.null_p > 0:  # null_p = 0 keeps the augmentation's random stream
            images, labels = replace_with_null_images(
                images, labels, self.hparams.null_p, shapes_space(), self.generator
            )
        flip = (torch.rand(images.shape[0], generator=self.generator) < 0.5).to(images.device)
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        images = images.contiguous(memory_format=torch.channels_last)
        loss = F.binary_cross_entropy_with_logits(self(images), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        images, labels, masks = batch["image"], batch["labels"], batch["masks"]
        logits = self(images)
        keep = dilate(masks.amax(dim=1, keepdim=True), self._radius(images))
        logits_object_only = self(keep_only(images, keep))
        targets = labels.long()
        self.val_clean(logits.sigmoid(), targets)
        self.val_object_only(logits_object_only.sigmoid(), targets)
        nulls = null_images(
            images.shape[0],
            images.shape[-1],
            shapes_space(),
            torch.Generator().manual_seed(batch_idx),
        )
        self.val_null(self(nulls.to(images.device)).sigmoid(), torch.zeros_like(targets))
        self.log("val/loss", F.binary_cross_entropy_with_logits(logits, labels))
        self.log("val/exact_match", self.val_clean, prog_bar=True)
        self.log("val/object_only_exact_match", self.val_object_only, prog_bar=True)
        self.log("val/null_no_label", self.val_null)

    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_one_cycle(self, self.hparams.lr, self.hparams.weight_decay, pct_start=0.15)
