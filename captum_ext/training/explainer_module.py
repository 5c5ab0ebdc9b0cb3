"""Lightning module that trains a learned Explainer against a frozen classifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from captum_ext._utils.validation import check_choice
from captum_ext.metrics import PointingAccuracy, continuous_iou, normalize_map, pointing_game
from captum_ext.metrics.masking_matrix import class_masking_matrix, masking_matrix_ratio
from captum_ext.models.classifiers import build_classifier
from captum_ext.models.explainer_nets import build_explainer_net
from captum_ext.training._random_state import load_random_state, save_random_state
from captum_ext.training.explainer_loss import ExplainerLoss, MaskLoss

LR_SCHEDULES = ("constant", "cosine", "onecycle")
#: A target mask is near-constant ("collapsed") when the standard deviation of its
#: values over the pixels is below this (a healthy shapes-world mask: 0.18 or more; an
#: untrained U-Net: about 0.001; a binary mask of an object covering 0.25% of the image:
#: 0.05).
COLLAPSE_STD = 0.05
#: The collapse warning fires when at least this fraction of a training epoch's target
#: masks collapsed.
COLLAPSE_WARN_FRACTION = 0.5
#: Where the warning sends the user.
RECIPE = "'Training on your own classifier' in docs/methods/explainer.md"


class ExplainerModule(LightningModule):
    """The Explainer network (``self.model``) trained against a frozen classifier.

    The classifier (``self.classifier``) is put in eval mode with ``requires_grad=False``
    and stays so through fit, validate and test: :meth:`train` never switches it back
    (the authors' code, <https://github.com/stevenstalder/NN-Explainer>, let
    Lightning do so, which moved the classifier's BatchNorm statistics and sampled its
    dropout during training).
    Its weights are left out of Lightning checkpoints (they are rebuilt from
    ``classifier`` / ``classifier_checkpoint``).

    Every loss term is logged as ``train/<term>``, ``val/<term>``, ``test/<term>``
    (``val/loss``, the paper's model-selection criterion, among them). When validation /
    test batches carry ground-truth ``masks``, the continuous IoU and pointing game of
    each present class's mask (normalised as the evaluation harness does) are logged as
    ``val/iou``, ``val/pointing`` (over the epoch's pairs, mean over classes, as
    TorchRay and the papers) and ``val/pointing_pairs`` (hit rate over the pairs), for
    monitoring and tuning; training uses no masks.

    Class specificity: every validation epoch, ``val/class_ratio`` is Stalder et al.'s
    Table 1 criterion on the first ``class_ratio_images`` validation images (a fixed
    subset when the validation loader does not shuffle): each image is masked with the
    sigmoid mask of every class, thresholded at 0.1, ..., 0.9, and the classifier's
    softmax score of each class present in the image is read
    (:func:`~captum_ext.metrics.class_masking_matrix`, reference ``Constant(0)``, as
    ``evaluate-explainer``'s Table 1); the logged value is the mean diagonal of that
    matrix (class c's score with class c's mask) over its mean off-diagonal (class c's
    score with another class's mask),
    :func:`~captum_ext.metrics.masking_matrix.masking_matrix_ratio`. 1 means
    class-agnostic masks; higher is better, so monitor it with ``mode: max``. It costs
    ``1 + 9 K`` classifier passes per image.

    Mask collapse: ``<stage>/mask_std`` is the mean over the batch's (image, target
    class) pairs of the standard deviation of the mask's values over the pixels, and
    ``<stage>/mask_collapse`` the fraction of those masks that are near-constant (std
    below :data:`COLLAPSE_STD`: all on, all off or flat). When at least
    :data:`COLLAPSE_WARN_FRACTION` of a training epoch's target masks collapsed, one
    warning per fit says which way they collapsed and what to change.

    Batches are dicts (``"image"``, ``"labels"`` multi-hot ``(N, K)``, optional
    ``"masks"``) or ``(image, target)`` tuples / lists, with ``target`` either class
    indices ``(N,)`` (one class per image) or multi-hot ``(N, K)``.

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
        Seed of the module's random draws during training (flips, random fillers, RTIS
        alternatives); validation and test batch ``i`` draw from a generator seeded with
        ``i``, so that they are reproducible and leave the training stream alone.
    class_ratio_images : int
        Validation images of ``val/class_ratio`` (0 turns it off).

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
        classifier: str | nn.Module = "vgg16",
        classifier_checkpoint: str | None = None,
        classifier_prefix: str | None = None,
        arch: str = "deeplabv3_resnet50",
        arch_kwargs: dict[str, Any] | None = None,
        loss: MaskLoss | None = None,
        lr: float = 1e-5,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        hflip: bool = False,
        seed: int = 0,
        class_ratio_images: int = 64,
    ) -> None:
        super().__init__()
        check_choice(lr_schedule, "lr_schedule", LR_SCHEDULES)
        if class_ratio_images < 0:
            raise ValueError(f"`class_ratio_images` must be >= 0, got {class_ratio_images}")
        self.save_hyperparameters(
            ignore=["loss"] + ([] if isinstance(classifier, str) else ["classifier"])
        )
        self.model = build_explainer_net(arch, num_classes, **(arch_kwargs or {}))
        if isinstance(classifier, str):
            classifier = build_classifier(
                classifier, num_classes, classifier_checkpoint, classifier_prefix
            )
        if not isinstance(classifier, nn.Module):
            raise TypeError(
                f"`classifier` must be a name or an nn.Module, got {type(classifier).__name__}"
            )
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
        # Validation images, labels and masks kept for val/class_ratio.
        self._ratio_parts: list = []
        # Training epoch's [collapsed masks, target masks, sum of collapsed masks' means].
        self._collapse = torch.zeros(3)
        self._collapse_warned = False

    # ---------------------------------------------------------------- frozen classifier
    def train(self, mode: bool = True) -> ExplainerModule:
        """Set the Explainer's mode; the classifier always stays in eval mode."""
        super().train(mode)
        self.classifier.eval()
        return self

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The classifier is frozen and rebuilt from its own weights file: keep it out.
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("classifier.")
        }
        save_random_state(checkpoint, self.generator)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"].update(
            {f"classifier.{k}": v for k, v in self.classifier.state_dict().items()}
        )
        load_random_state(self, checkpoint, self.generator)

    # ---------------------------------------------------------------- steps
    def forward(self, images: Tensor) -> Tensor:
        """Explainer logits ``(N, K, H, W)``."""
        return self.model(images)

    def export_config(self) -> dict[str, Any]:
        """Arguments of :func:`~captum_ext.models.explainer_nets.build_explainer_net`."""
        return dict(self.model.config)

    def _unpack(self, batch: Any) -> tuple[Tensor, Tensor, dict[str, Any]]:
        """Images, ``(N, K)`` float multi-hot labels, and the batch as a dict (extras)."""
        if isinstance(batch, dict):
            return batch["image"], batch["labels"], batch
        if not isinstance(batch, Sequence) or len(batch) != 2:
            raise TypeError(
                "a batch must be a dict with 'image' and 'labels' or an (image, target) "
                f"tuple / list, got {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, Sequence) else "")
            )
        images, targets = batch
        k = self.hparams.num_classes
        if not isinstance(targets, Tensor):
            raise TypeError(f"the batch's target must be a Tensor, got {type(targets).__name__}")
        if targets.shape == (images.shape[0],) and not targets.is_floating_point():
            if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= k):
                raise ValueError(f"class-index targets must be in [0, {k}), got {targets.tolist()}")
            labels = F.one_hot(targets.long(), k).float()
        elif targets.shape == (images.shape[0], k):
            labels = targets.float()
        else:
            raise ValueError(
                f"the batch's target must be class indices ({images.shape[0]},) or multi-hot "
                f"({images.shape[0]}, {k}), got {targets.dtype} {tuple(targets.shape)}"
            )
        return images, labels, {"image": images, "labels": labels}

    def _step(self, batch: Any, stage: str, batch_idx: int = 0) -> Tensor:
        images, labels, batch = self._unpack(batch)
        if stage == "train" and self.hparams.hflip:
            flip = torch.rand(images.shape[0], generator=self.generator).to(images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        mask_logits = self(images)
        generator = self.generator if stage == "train" else torch.Generator().manual_seed(batch_idx)
        terms = self.loss(images, labels, mask_logits, self.classifier, generator)
        terms.update(self._collapse_scores(mask_logits, labels, stage))
        if stage != "train" and "masks" in batch:
            terms.update(self._mask_scores(batch, mask_logits, stage))
        if stage == "val":
            self._keep_for_class_ratio(images, labels, mask_logits)
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

    def _mask_scores(
        self, batch: dict[str, Any], mask_logits: Tensor, stage: str
    ) -> dict[str, Any]:
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

    # ---------------------------------------------------------------- mask collapse
    def _collapse_scores(
        self, mask_logits: Tensor, labels: Tensor, stage: str
    ) -> dict[str, Tensor]:
        """``mask_std`` and ``mask_collapse`` of the (image, target class) masks."""
        img, cls = (labels > 0.5).nonzero(as_tuple=True)
        if img.numel() == 0:
            return {}
        masks = mask_logits.detach()[img, cls].float().sigmoid().flatten(1)
        std = masks.std(dim=1, correction=0)
        collapsed = std < COLLAPSE_STD
        if stage == "train":
            counts = std.new_tensor(
                [collapsed.sum(), img.numel(), masks.mean(dim=1)[collapsed].sum()]
            )
            self._collapse = self._collapse.to(counts.device) + counts
        return {"mask_std": std.mean(), "mask_collapse": collapsed.float().mean()}

    def on_fit_start(self) -> None:
        self._collapse_warned = False

    def on_train_epoch_start(self) -> None:
        self._collapse = torch.zeros(3)

    def on_train_epoch_end(self) -> None:
        collapsed, total, level_sum = self._collapse.tolist()
        if self._collapse_warned or not total or collapsed / total < COLLAPSE_WARN_FRACTION:
            return
        self._collapse_warned = True
        level = level_sum / collapsed
        if level >= 0.9:
            how = "all on (they keep the whole image)"
            advice = (
                "Removing the object does not cost the loss enough: raise l_e (the "
                "entropy of the classifier on the removed image), then l_m; and check "
                "that the classifier's score drops when the object is removed."
            )
        elif level <= 0.1:
            how = "all off (they keep nothing)"
            advice = (
                "The area terms outweigh the classification term: lower l_m and l_n "
                "(then l_ac), and check that the classifier recognises images that keep "
                "only the object (the rest replaced by the loss's filler reference)."
            )
        else:
            how = f"flat at {level:.2f} (the Explainer has not started to learn)"
            advice = (
                "Raise the learning rate (1e-3 with lr_schedule='onecycle' for a U-Net "
                "trained from scratch) or train for more steps."
            )
        rank_zero_warn(
            f"Explainer masks collapsed: in epoch {self.current_epoch}, "
            f"{collapsed / total:.0%} of the {int(total)} target-class masks were near-constant "
            f"(std over the pixels < {COLLAPSE_STD}), {how}. {advice} See {RECIPE}; "
            "train/mask_collapse and train/mask_std track it."
        )

    # ---------------------------------------------------------------- class specificity
    def _keep_for_class_ratio(self, images: Tensor, labels: Tensor, mask_logits: Tensor) -> None:
        room = self.hparams.class_ratio_images - sum(part[0].shape[0] for part in self._ratio_parts)
        if room > 0 and self.hparams.num_classes > 1:
            self._ratio_parts.append(
                (images[:room], labels[:room], mask_logits[:room].detach().float().sigmoid())
            )

    def on_validation_epoch_start(self) -> None:
        self._ratio_parts = []

    def on_validation_epoch_end(self) -> None:
        if not self._ratio_parts:
            return
        images, labels, masks = (torch.cat(part) for part in zip(*self._ratio_parts))
        self._ratio_parts = []
        matrix = class_masking_matrix(self.classifier, images, masks, labels, score="softmax")
        self.log("val/class_ratio", masking_matrix_ratio(matrix), sync_dist=True)

    # ---------------------------------------------------------------- Lightning hooks
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val", batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test", batch_idx)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.Adam(
            self.model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay
        )
        if hp.lr_schedule == "constant":
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        if hp.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=hp.lr, total_steps=steps, pct_start=0.1
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
