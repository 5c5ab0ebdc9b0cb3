"""Lightning module that trains a learned Explainer against a frozen classifier."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn

from captum_ext._utils.validation import check_choice
from captum_ext.metrics import PointingAccuracy, continuous_iou, normalize_map, pointing_game
from captum_ext.models.classifiers import build_classifier
from captum_ext.models.explainer_nets import build_explainer_net
from captum_ext.training.explainer_loss import ExplainerLoss, MaskLoss

LR_SCHEDULES = ("constant", "cosine", "onecycle")


class ExplainerModule(LightningModule):
    """The Explainer network (``self.model``) trained against a frozen classifier.

    The classifier (``self.classifier``) is put in eval mode with ``requires_grad=False``
    and stays so through fit, validate and test: :meth:`train` never switches it back
    (the authors' code, <https://github.com/stevenstalder/NN-Explainer>, let
    Lightning do so, which moved the classifier's BatchNorm statistics and sampled its
    dropout during training).
    Its weights are left out of Lightning checkpoints (they are rebuilt from
    ``classifier`` / ``classifier_checkpoint``).

    Every loss term is logged as ``train/<term>``, ``val/<term>``, ``test/<term>``; early
    stopping and checkpointing monitor ``val/loss``. When validation / test batches carry
    ground-truth ``masks``, the continuous IoU and pointing game of each present
    class's mask (normalised as the evaluation harness does) are logged as
    ``val/iou``, ``val/pointing`` (over the epoch's pairs, mean over classes, as
    TorchRay and the papers) and ``val/pointing_pairs`` (hit rate over the pairs), for
    monitoring and tuning; training uses no masks.

    Parameters
    ----------
    num_classes : int
        Number of classes K.
    classifier : str or nn.Module
        The classifier to explain: an ``nn.Module`` (Python use), or a name of
        :data:`~captum_ext.models.classifiers.CLASSIFIERS` (``"shapes"``, ``"vgg16"``,
        ``"resnet50"``) rebuilt from ``classifier_checkpoint``.
    classifier_checkpoint : str, optional
        Weights of the named classifier.
    classifier_prefix : str, optional
        Key prefix of the classifier's weights inside its checkpoint.
    arch : str
        Explainer architecture (:data:`~captum_ext.models.explainer_nets.ARCHITECTURES`;
        the paper's ``deeplabv3_resnet50``).
    arch_kwargs : dict, optional
        Extra arguments of the architecture (``width``/``depth`` of the U-Net,
        ``weights_backbone`` of the torchvision networks).
    loss : MaskLoss, optional
        :class:`~captum_ext.training.explainer_loss.ExplainerLoss` (default, reference
        weights) or :class:`~captum_ext.training.explainer_loss.RTISLoss`.
    lr : float
        Adam learning rate (1e-5 in the paper's VOC-VGG16 setting).
    weight_decay : float
        Adam weight decay.
    lr_schedule : {"constant", "cosine", "onecycle"}
        ``constant`` (the paper), cosine annealing or one-cycle over the run's steps.
    hflip : bool
        Random horizontal flips of the training images (off in the paper).
    seed : int
        Seed of the module's random draws (flips, random fillers, RTIS alternatives).

    Examples
    --------
    >>> from torch import nn
    >>> clf = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> module = ExplainerModule(num_classes=4, classifier=clf, arch="unet",
    ...                          arch_kwargs={"width": 4, "depth": 1})
    >>> module(torch.zeros(1, 3, 16, 16)).shape
    torch.Size([1, 4, 16, 16])
    """

    def __init__(
        self,
        num_classes: int = 20,
        classifier: Union[str, nn.Module] = "vgg16",
        classifier_checkpoint: Optional[str] = None,
        classifier_prefix: Optional[str] = None,
        arch: str = "deeplabv3_resnet50",
        arch_kwargs: Optional[Dict[str, Any]] = None,
        loss: Optional[MaskLoss] = None,
        lr: float = 1e-5,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        hflip: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_choice(lr_schedule, "lr_schedule", LR_SCHEDULES)
        self.save_hyperparameters(ignore=["loss"] + ([] if isinstance(classifier, str) else ["classifier"]))
        self.model = build_explainer_net(arch, num_classes, **(arch_kwargs or {}))
        if isinstance(classifier, str):
            classifier = build_classifier(classifier, num_classes, classifier_checkpoint, classifier_prefix)
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"`classifier` must be a name or an nn.Module, got {type(classifier).__name__}")
        self.classifier = classifier.eval().requires_grad_(False)
        self.loss = loss if loss is not None else ExplainerLoss()
        self.generator = torch.Generator().manual_seed(seed)
        # The mean over classes needs every pair of the epoch: accumulated, then logged.
        self.pointing = nn.ModuleDict(
            {
                f"{stage}_{kind}": PointingAccuracy(per_pair=kind == "pairs")
                for stage in ("val", "test")
                for kind in ("classes", "pairs")
            }
        )

    # ---------------------------------------------------------------- frozen classifier
    def train(self, mode: bool = True) -> "ExplainerModule":
        """Set the Explainer's mode; the classifier always stays in eval mode."""
        super().train(mode)
        self.classifier.eval()
        return self

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        # The classifier is frozen and rebuilt from its own weights file: keep it out.
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("classifier.")
        }
        checkpoint["generator_state"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["state_dict"].update(
            {f"classifier.{k}": v for k, v in self.classifier.state_dict().items()}
        )
        if "generator_state" in checkpoint:
            self.generator.set_state(checkpoint["generator_state"])

    # ---------------------------------------------------------------- steps
    def forward(self, images: Tensor) -> Tensor:
        """Explainer logits ``(N, K, H, W)``."""
        return self.model(images)

    def export_config(self) -> Dict[str, Any]:
        """Arguments of :func:`~captum_ext.models.explainer_nets.build_explainer_net`."""
        return dict(self.model.config)

    def _step(self, batch: Dict[str, Any], stage: str) -> Tensor:
        images, labels = batch["image"], batch["labels"]
        if stage == "train" and self.hparams.hflip:
            flip = torch.rand(images.shape[0], generator=self.generator).to(images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        mask_logits = self(images)
        terms = self.loss(images, labels, mask_logits, self.classifier, self.generator)
        if stage != "train" and "masks" in batch:
            terms.update(self._mask_scores(batch, mask_logits, stage))
        on_step = stage == "train"
        for name, value in terms.items():
            self.log(
                f"{stage}/{name}",
                value,
                prog_bar=name == "loss",
                on_step=on_step,
                on_epoch=not on_step,
                batch_size=images.shape[0],
            )
        return terms["loss"]

    def _mask_scores(self, batch: Dict[str, Any], mask_logits: Tensor, stage: str) -> Dict[str, Any]:
        """IoU and pointing of each (image, present class) mask against its ground truth."""
        gt = batch["masks"]
        present = (batch["labels"] > 0.5) & (gt.flatten(2).amax(dim=2) > 0.5)
        img, cls = present.nonzero(as_tuple=True)
        if img.numel() == 0:
            return {}
        maps = normalize_map(mask_logits[img, cls].sigmoid().unsqueeze(1))
        valid = batch["valid"][img] if "valid" in batch else None
        hits = pointing_game(maps, masks=gt[img, cls])
        pointing = {k: self.pointing[f"{stage}_{k}"] for k in ("classes", "pairs")}
        for metric in pointing.values():
            metric.update(hits, cls)
        return {
            "iou": continuous_iou(maps, gt[img, cls], valid).mean(),
            "pointing": pointing["classes"],
            "pointing_pairs": pointing["pairs"],
        }

    def training_step(self, batch: Dict[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.Adam(self.model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.lr_schedule == "constant":
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        if hp.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=hp.lr, total_steps=steps, pct_start=0.1
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
