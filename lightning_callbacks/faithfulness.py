"""Log faithfulness metrics of an attribution method on fixed samples during training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanMetric, Metric

from captum_ext.metrics import (
    PointingAccuracy,
    continuous_iou,
    deletion_auc,
    insertion_auc,
    normalize_map,
    pointing_game,
    saliency_metric,
)
from lightning_callbacks._attribution import (
    AttributionFn,
    AttributionSpec,
    MethodLike,
    ModelLike,
    attribution_context,
)
from lightning_callbacks._batch import Samples, TargetPolicy, Unpack
from lightning_callbacks._periodic import PeriodicAttributionCallback
from lightning_callbacks._samples import FixedSamples

#: Metrics that score a map against the model (always available).
MODEL_METRICS = ("deletion_auc", "insertion_auc", "saliency_metric")
#: Metrics that need ground truth in the batch (masks; boxes for the pointing game).
GROUND_TRUTH_METRICS = ("pointing_game", "pointing_game_pairs", "continuous_iou")
#: Pointing accuracies over the (sample, target) pairs: name -> per pair (else class mean).
POINTING_METRICS = {"pointing_game": False, "pointing_game_pairs": True}
METRICS = MODEL_METRICS + GROUND_TRUTH_METRICS


def _target_masks(samples: Samples, targets: Tensor) -> Tensor:
    """``(N, 1, H, W)`` ground-truth mask of each sample's target class."""
    index = torch.arange(len(samples), device=targets.device)
    return samples.masks[index, targets].unsqueeze(1).float()


def _target_present(samples: Samples, targets: Tensor) -> Tensor:
    """``(N,)`` bool: the target class has ground truth (mask pixels or a box)."""
    if samples.masks is not None:
        return _target_masks(samples, targets).flatten(1).amax(dim=1) > 0
    return (samples.box_labels == targets.view(-1, 1)).any(dim=1)


class FaithfulnessMetrics(PeriodicAttributionCallback):
    """Deletion / insertion AUC, saliency metric, pointing game and continuous IoU.

    At each event the callback explains a fixed subset of the validation (or test)
    data with the given method against the model as it is now, scores the maps with
    :mod:`captum_ext.metrics` and logs each metric's mean over the samples as
    ``<name>/<metric>`` to every logger, to the ``callback_metrics`` that
    ``ModelCheckpoint`` / ``EarlyStopping`` monitor, and to the progress bar with
    ``prog_bar=True``. In ``fit`` the values go to the loggers directly, at
    ``trainer.global_step`` (the step :class:`MaskLogger` logs its images at):
    ``pl_module.log`` would hand the values of a step event to the loggers only on
    steps that are multiples of the Trainer's ``log_every_n_steps``, dropping the
    others. In ``validate`` / ``test`` they go through ``pl_module.log``, which logs
    them at the end of the loop and returns them from ``trainer.validate`` /
    ``trainer.test``.

    In a distributed run every rank scores its share of the samples (rank ``r`` takes
    samples ``r, r + W, ...``) and the per-sample values are accumulated in
    ``torchmetrics.MeanMetric`` states, which are summed across ranks at compute time:
    the logged value is the mean over all samples, equal to the single-process value.

    The metrics:

    * ``deletion_auc`` (lower is better), ``insertion_auc`` (higher is better): Petsiuk
      et al.'s curves (:func:`captum_ext.metrics.deletion_auc`);
    * ``saliency_metric`` (lower is better): Dabkowski & Gal;
    * ``pointing_game`` (TorchRay's pointing accuracy: the mean over target classes of
      each class's hit rate), ``pointing_game_pairs`` (hit rate over the samples) and
      ``continuous_iou`` (of the map clamped at 0 and divided by its maximum against
      the target's mask): only when the batch carries ground truth (``masks``;
      ``boxes`` suffice for the pointing game), over the samples whose target class
      has ground truth (an absent predicted class is not scored, as in the pointing
      game's usual protocol). The pointing tolerance is
      :func:`captum_ext.metrics.scaled_tolerance` of the image size unless
      ``metric_args`` gives one.

    Events, loop states and parameters shared with :class:`MaskLogger` are described
    there; the model is in eval mode for the attribution and the metrics, and left
    exactly as it was.

    Parameters
    ----------
    method, init_args, attribute_args, attribution_fn, model
        What computes the maps, as in :class:`MaskLogger`. ``model`` is also the
        classifier the metrics query.
    metrics : sequence of str
        Which metrics to log (default all six; ground-truth metrics are skipped for
        batches without ground truth).
    num_samples : int
        Number of samples drawn from the evaluation dataset.
    samples : any, optional
        Explicit samples instead of a draw.
    seed : int
        Seed of the draw.
    target : {"label", "predicted"} or int
        The class explained and scored per sample.
    every_n_epochs, every_n_steps : int, optional
        Event periods in ``fit``.
    batch_size : int
        Samples explained at once.
    score : {"softmax", "sigmoid", "logit"}
        How the model's outputs become the scored probability (``sigmoid`` for
        multi-label classifiers).
    metric_args : dict, optional
        Extra keyword arguments per metric, e.g. ``{"deletion_auc": {"steps": 16}}``;
        the metrics' defaults otherwise (:mod:`captum_ext.metrics`: 28 steps, substrate
        ``Constant(0)``; Petsiuk et al. inserted into a blurred image:
        ``{"insertion_auc": {"filler": Blur(...)}}``).
    prog_bar : bool
        Show the metrics in the progress bar.
    name : str, optional
        Prefix of the logged keys (default ``"faithfulness/<method name>"``).
    unpack : callable, optional
        Turns a batch of another layout into a sample dict or ``(images, labels)``.

    Examples
    --------
    >>> metrics_cb = FaithfulnessMetrics("captum.attr.Saliency", num_samples=32,
    ...                                  score="sigmoid", name="faith")
    >>> # Trainer(callbacks=[metrics_cb, ModelCheckpoint(monitor="faith/deletion_auc")])
    """

    def __init__(
        self,
        method: MethodLike | None = None,
        *,
        init_args: dict[str, Any] | None = None,
        attribute_args: dict[str, Any] | None = None,
        attribution_fn: AttributionFn | None = None,
        model: ModelLike = None,
        metrics: Sequence[str] = METRICS,
        num_samples: int = 32,
        samples: Any = None,
        seed: int = 0,
        target: TargetPolicy = "label",
        every_n_epochs: int | None = 1,
        every_n_steps: int | None = None,
        batch_size: int = 16,
        score: str = "softmax",
        metric_args: dict[str, dict[str, Any]] | None = None,
        prog_bar: bool = False,
        name: str | None = None,
        unpack: Unpack | None = None,
    ) -> None:
        spec = AttributionSpec(method, init_args, attribute_args, attribution_fn, model)
        super().__init__(
            f"faithfulness/{spec.name}" if name is None else name,
            spec,
            FixedSamples(num_samples, seed, samples, unpack),
            target,
            every_n_epochs,
            every_n_steps,
        )
        metrics = tuple(metrics)
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown or not metrics:
            raise ValueError(f"`metrics` must be a non-empty subset of {METRICS}, got {metrics}")
        metric_args = dict(metric_args or {})
        if set(metric_args) - set(metrics):
            raise ValueError(
                f"`metric_args` names metrics that are not computed: "
                f"{sorted(set(metric_args) - set(metrics))}"
            )
        self.metrics = metrics
        self.batch_size = batch_size
        self.score = score
        self.metric_args = metric_args
        self.prog_bar = prog_bar
        self._means: dict[str, Metric] = {}

    # ------------------------------------------------------------------ scoring
    def _scorers(self, samples: Samples) -> dict[str, Callable[..., Tensor]]:
        """``metric -> fn(model, samples, targets, maps) -> (N,)`` for these samples."""
        args = self.metric_args
        table: dict[str, Callable[..., Tensor]] = {
            "deletion_auc": lambda f, s, t, m: deletion_auc(
                f, s.images, m, t, score=self.score, **args.get("deletion_auc", {})
            ),
            "insertion_auc": lambda f, s, t, m: insertion_auc(
                f, s.images, m, t, score=self.score, **args.get("insertion_auc", {})
            ),
            "saliency_metric": lambda f, s, t, m: saliency_metric(
                f, s.images, m, t, score=self.score, **args.get("saliency_metric", {})
            ),
        }
        if samples.masks is not None:
            for key in POINTING_METRICS:
                table[key] = lambda f, s, t, m, key=key: pointing_game(
                    m, masks=_target_masks(s, t), **args.get(key, {})
                )
            table["continuous_iou"] = lambda f, s, t, m: continuous_iou(
                normalize_map(m), _target_masks(s, t), **args.get("continuous_iou", {})
            )
        elif samples.boxes is not None and samples.box_labels is not None:
            for key in POINTING_METRICS:
                table[key] = lambda f, s, t, m, key=key: pointing_game(
                    m, boxes=s.boxes, box_labels=s.box_labels, target=t, **args.get(key, {})
                )
        return {name: table[name] for name in self.metrics if name in table}

    def compute(self, trainer: Any, pl_module: Any) -> dict[str, Tensor]:
        """This rank's share of the samples scored; returns the means over all ranks.

        Every rank must call it (the means are reduced across ranks).
        """
        # Metric states must never be inference tensors (validate/test loops).
        with torch.inference_mode(False):
            samples = self.samples.get(trainer, pl_module)
            scorers = self._scorers(samples)  # the same on every rank: all see all samples
            device = pl_module.device
            for name in scorers:
                if name not in self._means:
                    self._means[name] = (
                        PointingAccuracy(per_pair=POINTING_METRICS[name])
                        if name in POINTING_METRICS
                        else MeanMetric()
                    )
                self._means[name] = self._means[name].to(device)
                self._means[name].reset()
            share = torch.arange(trainer.global_rank, len(samples), trainer.world_size)
            for chunk in share.split(self.batch_size):
                chunk_samples, targets, maps, _ = self.spec.explain(
                    pl_module, samples.select(chunk), self.target
                )
                model = self.spec.model(pl_module)
                # Ground-truth metrics score the samples whose target has ground truth.
                present = torch.ones_like(targets, dtype=torch.bool)
                if any(name in GROUND_TRUTH_METRICS for name in scorers):
                    present = _target_present(chunk_samples, targets)
                with attribution_context(self.spec.guarded_modules(pl_module), device):
                    for name, scorer in scorers.items():
                        rows = torch.arange(len(targets), device=device)
                        if name in GROUND_TRUTH_METRICS:
                            rows = rows[present]
                        if rows.numel() == 0:
                            continue
                        values = scorer(
                            model, chunk_samples.select(rows), targets[rows], maps[rows]
                        )
                        if name in POINTING_METRICS:
                            self._means[name].update(values, targets[rows])
                        else:
                            self._means[name].update(values.detach().float())
            for name in scorers:  # the state reduction is collective: every rank takes part
                empty = torch.empty(0, device=device)
                if name in POINTING_METRICS:
                    self._means[name].update(empty, empty.long())
                else:
                    self._means[name].update(empty)
            return {name: self._means[name].compute() for name in scorers}

    def log_event(self, trainer: Any, pl_module: Any) -> None:
        values = {
            f"{self.name}/{metric}": value
            for metric, value in self.compute(trainer, pl_module).items()
            if not torch.isnan(value)  # NaN: no sample had ground truth for its target
        }
        fitting = trainer.state.fn == "fit"
        for key, value in values.items():
            # The value is already the mean over all ranks; sync_dist on identical
            # values changes nothing and keeps Lightning from warning about DDP logging.
            pl_module.log(key, value, sync_dist=True, prog_bar=self.prog_bar, logger=not fitting)
        if fitting and values and trainer.is_global_zero:
            scalars = {key: float(value) for key, value in values.items()}
            for logger in trainer.loggers:
                logger.log_metrics(scalars, step=trainer.global_step)
                logger.save()
