"""Lightning module that trains the mask-aware inpainting U-Net self-supervised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from captum_ext.models.inpainting_unet import InpaintingUNet
from captum_ext.training._random_state import load_random_state, save_random_state
from captum_ext.training._schedules import adamw_one_cycle
from captum_ext.training.inpainting_losses import gradient_energy, masked_l1, texture_loss

#: With ``prefill``, the dead-correction warning fires when the network's mean absolute
#: correction inside the validation holes is below this after training has started (a
#: working shapes-world network: about 0.02; one whose correction died: about 1e-7).
DEAD_CORRECTION = 1e-4


class InpainterModule(LightningModule):
    """Self-supervised inpainting: random holes are cut out of images and predicted back.

    Loss on the composite ``c = holes * prediction + (1 - holes) * image``:
    ``l1_hole * L1(holes) + l1_valid * L1(valid pixels of the raw prediction)
    + texture * texture_loss(c, image, holes)`` (see
    :mod:`captum_ext.training.inpainting_losses`: L1 alone gives a smooth fill that
    keeps a removed object's silhouette on textured backgrounds).

    Validation logs the hole L1, the texture loss and the ratio of the fill's gradient
    energy to the true one inside the holes (``val/grad_energy_ratio``; 1 = as much
    texture as the real background, a smooth fill is well below 1). With ``prefill`` it
    also logs ``val/correction``, the network's mean absolute change to OpenCV's fill
    inside the holes; if it stays below :data:`DEAD_CORRECTION` after training started,
    the network returns OpenCV's fill unchanged and one warning per fit says so (a peak
    learning rate too high for the image size does this: at 96 x 96 the preset's 2e-3
    did on two seeds, 1e-3 learned).

    Parameters
    ----------
    width, depth, dilations, noise_channels, prefill
        Arguments of :class:`~captum_ext.models.inpainting_unet.InpaintingUNet`.
    lr : float
        Peak learning rate of the one-cycle AdamW schedule.
    weight_decay : float
        AdamW weight decay.
    l1_hole, l1_valid, texture : float
        Loss weights.
    seed : int
        Seed of the network's input noise during training (validation batch ``i`` draws
        its noise from a generator seeded with ``i``).

    Examples
    --------
    >>> module = InpainterModule(width=8)
    >>> holes = torch.zeros(1, 1, 32, 32, dtype=torch.bool); holes[..., 8:16, 8:16] = True
    >>> module(torch.rand(1, 3, 32, 32), holes).shape
    torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        width: int = 16,
        depth: int = 3,
        dilations: Sequence[int] = (2, 4),
        noise_channels: int = 1,
        prefill: str | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        l1_hole: float = 1.0,
        l1_valid: float = 0.1,
        texture: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = InpaintingUNet(width, depth, tuple(dilations), noise_channels, prefill)
        self.generator = torch.Generator().manual_seed(seed)
        self._correction = torch.zeros(2)  # validation epoch's [sum, batches]
        self._correction_warned = False

    def export_config(self) -> dict[str, Any]:
        """Arguments that rebuild :attr:`model`."""
        hp = self.hparams
        return {
            "width": hp.width,
            "depth": hp.depth,
            "dilations": list(hp.dilations),
            "noise_channels": hp.noise_channels,
            "prefill": hp.prefill,
        }

    def forward(self, images: Tensor, holes: Tensor) -> Tensor:
        return self.model(images, holes, generator=self.generator)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_random_state(checkpoint, self.generator)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_random_state(self, checkpoint, self.generator)

    def on_fit_start(self) -> None:
        # channels_last convolutions are faster on CPU and on tensor-core GPUs.
        self.model.to(memory_format=torch.channels_last)
        self._correction_warned = False

    def _losses(
        self,
        batch: dict[str, Any],
        generator: torch.Generator | None = None,
        with_correction: bool = False,
    ) -> dict[str, Tensor]:
        images, holes = batch["image"], batch["holes"].to(batch["image"].dtype)
        generator = self.generator if generator is None else generator
        prediction = self.model(images, holes, generator=generator)
        composite = holes * prediction + (1 - holes) * images
        losses = {
            "l1_hole": masked_l1(prediction, images, holes),
            "l1_valid": masked_l1(prediction, images, 1 - holes),
            "texture": texture_loss(composite, images, holes),
        }
        hp = self.hparams
        losses["loss"] = (
            hp.l1_hole * losses["l1_hole"]
            + hp.l1_valid * losses["l1_valid"]
            + hp.texture * losses["texture"]
        )
        losses["grad_energy_ratio"] = gradient_energy(composite, holes) / gradient_energy(
            images, holes
        ).clamp_min(1e-8)
        if with_correction and self.model.prefill is not None:
            base = self.model.classical_fill(images, holes)
            losses["correction"] = masked_l1(prediction, base, holes)
        return losses

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses = self._losses(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"})
        self.log("train/loss", losses["loss"], prog_bar=True)
        return losses["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Noise from a generator of its own: reproducible, and the training stream is
        # the same however often validation runs.
        losses = self._losses(batch, torch.Generator().manual_seed(batch_idx), True)
        self.log_dict({f"val/{k}": v for k, v in losses.items() if k != "loss"})
        self.log("val/loss", losses["loss"], prog_bar=True)
        if "correction" in losses:
            self._correction += torch.stack(
                [losses["correction"].detach().float().cpu(), torch.ones(())]
            )

    def on_validation_epoch_start(self) -> None:
        self._correction = torch.zeros(2)

    def on_validation_epoch_end(self) -> None:
        total, batches = self._correction.tolist()
        if self._correction_warned or self.trainer.sanity_checking or not batches:
            return
        if self.global_step == 0 or total / batches >= DEAD_CORRECTION:
            return
        self._correction_warned = True
        rank_zero_warn(
            f"Inpainter: after {self.global_step} steps the network's correction to "
            f"OpenCV's {self.hparams.prefill!r} fill is {total / batches:.1e} inside the "
            "holes (a working network: about 1e-2): it returns OpenCV's fill unchanged. "
            "A peak learning rate too high for the image size does this (at 96 x 96, "
            "1e-3 learned where the preset's 2e-3 did not), as does one too low to move "
            "the network: change --model.lr. val/correction tracks it."
        )

    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_one_cycle(self, self.hparams.lr, self.hparams.weight_decay, pct_start=0.1)
