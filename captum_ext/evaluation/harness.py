"""Evaluate attribution methods on image-class pairs of a dataset with ground truth.

Every image is evaluated for every class it contains: the batch of pairs repeats the
image once per present class, with ``target`` = that class. Each method's map
(``attribute(...)`` averaged over channels) is scored against the class's ground-truth
mask with the metrics of :mod:`captum_ext.metrics`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from captum.attr import FeatureAblation
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from captum_ext.data.samples import collate_samples
from captum_ext.evaluation.methods import MethodSpec
from captum_ext.fillers.base import Filler
from captum_ext.fillers.image_space import ImageSpace
from captum_ext.metrics import (
    DEFAULT_STEPS,
    attribution_map,
    deletion_curve,
    insertion_curve,
    normalize_map,
    pointing_accuracy,
    pointing_game,
    saliency_metric,
    sanity_rows,
    scaled_tolerance,
    segmentation_scores,
)
from captum_ext.utils import check_positive_int, check_score, preserved_state

#: Report columns: key -> (header, higher is better). "pointing" is the mean over
#: classes (the papers' convention), "pointing_pairs" the hit rate over pairs.
COLUMNS: dict[str, tuple] = {
    "pointing": ("Pointing (class mean)", True),
    "pointing_pairs": ("Pointing (pairs)", True),
    "iou": ("IoU", True),
    "accuracy": ("Soft acc.", True),
    "mae": ("MAE", False),
    "deletion_auc": ("Deletion AUC", False),
    "insertion_auc": ("Insertion AUC", True),
    "saliency": ("Saliency", False),
    "seconds_per_pair": ("s / pair", False),
}
SEGMENTATION = ("accuracy", "iou", "mae")
#: Columns computed from another column's per-pair values (``per_pair`` has no list).
DERIVED = ("pointing_pairs",)
#: Per-pair curves the harness averages (kept out of the per-pair table).
CURVES = ("deletion_curve", "insertion_curve")


def nan_mean(values: Sequence[float]) -> float:
    """Mean of the values that are not NaN (NaN when none is).

    Examples
    --------
    >>> nan_mean([1.0, float("nan"), 0.0]), nan_mean([])
    (0.5, nan)
    """
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


@dataclass
class FigureRows:
    """What the figure grid shows: the first pairs, their ground truth and maps."""

    images: Tensor  # (R, C, H, W) pixels in [0, 1]
    ground_truth: Tensor  # (R, H, W)
    titles: list[str]  # one per row
    maps: dict[str, Tensor] = field(default_factory=dict)  # method -> (R, H, W) in [0, 1]


@dataclass
class EvaluationResult:
    """Per-pair values and their means for every method.

    Attributes
    ----------
    methods : list of str
        Method names, in report order.
    per_pair : dict
        ``method -> metric -> list`` of one value per image-class pair (NaN where a
        metric does not apply, e.g. segmentation scores without masks); ``"pointing"``
        holds the hits.
    pairs : list of (int, int)
        ``(dataset index, class)`` of every pair.
    sanity : dict
        ``"0" | "0.5" | "1" | "G.T." -> metric -> mean`` segmentation sanity rows.
    settings : dict
        Parameters of the run (for the report).
    figure : FigureRows, optional
        Data of the figure grid.
    curves : dict
        ``method -> "deletion_curve" | "insertion_curve" -> mean score at each step``.
    curve_fractions : list of float
        Fraction of pixels removed / inserted at each step of the curves.
    class_names : list of str, optional
        Names of the dataset's classes (indexed by class id), for the reports.
    """

    methods: list[str]
    per_pair: dict[str, dict[str, list[float]]]
    pairs: list[tuple]
    sanity: dict[str, dict[str, float]]
    settings: dict[str, Any]
    figure: FigureRows | None = None
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    curve_fractions: list[float] = field(default_factory=list)
    class_names: list[str] | None = None

    def table(self) -> dict[str, dict[str, float]]:
        """``method -> metric -> mean`` over the pairs (NaNs ignored).

        Except the pointing game: ``"pointing"`` is the mean over classes of each
        class's accuracy and ``"pointing_pairs"`` the mean over pairs
        (:func:`~captum_ext.metrics.pointing_accuracy`).

        Examples
        --------
        >>> r = EvaluationResult(["m"], {"m": {"pointing": [1.0, 0.0, 1.0]}},
        ...                      [(0, 2), (1, 2), (1, 0)], {}, {})
        >>> row = r.table()["m"]
        >>> row["pointing"], round(row["pointing_pairs"], 3), row["iou"]
        (0.75, 0.667, nan)
        """
        classes = [c for _, c in self.pairs]
        out = {}
        for method in self.methods:
            values = self.per_pair[method]
            row = {key: nan_mean(values.get(key, [])) for key in COLUMNS}
            row["pointing"], row["pointing_pairs"] = pointing_accuracy(values["pointing"], classes)
            out[method] = row
        return out

    def class_table(self, key: str = "pointing") -> dict[str, dict[int, float]]:
        """``method -> class -> mean of key`` over that class's pairs (NaNs ignored).

        The pointing accuracy of Zhang et al. (2016), as Gu (2020, Sec. 4.3) reports it
        and TorchRay's ``PointingGame.accuracy`` computes it, is the mean over classes of
        these per-class accuracies (:meth:`table`'s ``"pointing"``).

        Examples
        --------
        >>> r = EvaluationResult(["m"], {"m": {"pointing": [1.0, 0.0, 1.0]}},
        ...                      [(0, 2), (1, 2), (1, 0)], {}, {})
        >>> r.class_table()
        {'m': {0: 1.0, 2: 0.5}}
        """
        if key not in COLUMNS:
            raise ValueError(f"unknown metric {key!r}; expected one of {list(COLUMNS)}")
        classes = sorted({c for _, c in self.pairs})
        out: dict[str, dict[int, float]] = {}
        for method in self.methods:
            by_class: dict[int, list[float]] = {c: [] for c in classes}
            for (_, c), v in zip(self.pairs, self.per_pair[method][key]):
                by_class[c].append(v)
            out[method] = {c: nan_mean(v) for c, v in by_class.items()}
        return out


@dataclass
class _Pairs:
    """One loader batch expanded into image-class pairs, on the model's device."""

    inputs: Tensor
    target: Tensor
    image: Tensor  # which image of the batch each pair comes from
    ids: list[tuple]  # (dataset index, class) per pair
    masks: Tensor | None
    valid: Tensor | None
    boxes: Tensor | None
    box_labels: Tensor | None

    @classmethod
    def from_batch(cls, batch: dict[str, Any], first_index: int, device: torch.device) -> _Pairs:
        """Every present class with ground truth becomes a pair (image repeated, target = class)."""
        present = batch["labels"] > 0.5
        if "masks" in batch:
            present &= batch["masks"].flatten(2).amax(dim=2) > 0.5
        img, klass = present.nonzero().unbind(dim=1)
        count = batch["image"].shape[0]
        index = batch.get("index", torch.arange(first_index, first_index + count))

        def take(key: str, by_class: bool = False) -> Tensor | None:
            if key not in batch:
                return None
            value = batch[key][img, klass] if by_class else batch[key][img]
            return value.to(device)

        return cls(
            inputs=batch["image"][img].to(device),
            target=klass.to(device),
            image=img.to(device),
            ids=list(zip(index[img].tolist(), klass.tolist())),
            masks=take("masks", by_class=True),
            valid=take("valid"),
            boxes=take("boxes"),
            box_labels=take("box_labels"),
        )


@dataclass
class _Scoring:
    """Parameters of the per-pair metrics."""

    model: nn.Module
    score: str
    tolerance: float | None  # None: scaled_tolerance of the image size
    deletion_filler: Filler | None
    insertion_filler: Filler | None
    steps: int
    saliency_alpha: float
    batch_size: int
    #: Fractions of pixels at the curves' points (set by the first call).
    fractions: list[float] = field(default_factory=list)

    def __call__(self, pairs: _Pairs, maps: Tensor) -> dict[str, Tensor]:
        """Every metric of one method's maps on a batch of pairs, ``key -> (P,)`` on the CPU."""
        x, target = pairs.inputs, pairs.target
        values: dict[str, Tensor] = {}
        if pairs.masks is not None:
            hits = pointing_game(maps, masks=pairs.masks, tolerance=self.tolerance)
            values["pointing"] = hits.float()
            segmentation = segmentation_scores(normalize_map(maps), pairs.masks, pairs.valid)
            values.update({key: segmentation[key] for key in SEGMENTATION})
        else:
            values["pointing"] = pointing_game(
                maps,
                boxes=pairs.boxes,
                box_labels=pairs.box_labels,
                target=target,
                tolerance=self.tolerance,
            ).float()
            values.update({key: torch.full((x.shape[0],), math.nan) for key in SEGMENTATION})
        curve = dict(steps=self.steps, score=self.score, batch_size=self.batch_size)
        deletion = deletion_curve(self.model, x, maps, target, filler=self.deletion_filler, **curve)
        insertion = insertion_curve(
            self.model, x, maps, target, filler=self.insertion_filler, **curve
        )
        values["deletion_auc"], values["insertion_auc"] = deletion.auc, insertion.auc
        values["deletion_curve"], values["insertion_curve"] = deletion.scores, insertion.scores
        self.fractions = deletion.fractions.tolist()
        values["saliency"] = saliency_metric(
            self.model,
            x,
            maps,
            target,
            alpha=self.saliency_alpha,
            score="softmax" if self.score == "softmax" else "sigmoid",
            batch_size=self.batch_size,
        )
        return {key: value.detach().float().cpu() for key, value in values.items()}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate_attributions(
    model: nn.Module,
    dataset: Dataset,
    methods: Sequence[MethodSpec],
    *,
    score: str = "softmax",
    num_images: int | None = None,
    image_batch_size: int = 16,
    pointing_tolerance: float | None = None,
    deletion_filler: Filler | None = None,
    insertion_filler: Filler | None = None,
    steps: int = DEFAULT_STEPS,
    saliency_alpha: float = 0.5,
    metric_batch_size: int = 256,
    figure_rows: int = 6,
    space: ImageSpace | None = None,
    class_names: Sequence[str] | None = None,
    show_progress: bool = True,
    map_cache: dict[Hashable, Tensor] | None = None,
) -> EvaluationResult:
    """Run every method on every image-class pair and score the maps.

    Metrics per pair (see docs/metrics.md): pointing game (against the class mask, or its boxes
    when the dataset has no masks), continuous IoU, soft accuracy and MAE of the
    normalised map (clamped at 0, divided by its max), deletion and insertion AUC,
    saliency metric, and the seconds each ``attribute`` call took per pair.

    Parameters
    ----------
    model : nn.Module
        The classifier (put in eval mode for the run, restored afterwards). Data are
        moved to its device.
    dataset : Dataset
        Samples in the format of :mod:`captum_ext.data.samples` (``image``,
        ``labels``, and ``masks`` and/or ``boxes`` + ``box_labels``; optional
        ``valid``).
    methods : sequence of MethodSpec
        The methods (see :func:`~captum_ext.evaluation.methods.default_methods`).
    score : {"softmax", "sigmoid", "logit"}
        Score of the perturbation metrics (``"sigmoid"`` for multi-label classifiers;
        the saliency metric needs a probability and uses ``sigmoid`` unless this is
        ``"softmax"``).
    num_images : int, optional
        Evaluate the first ``num_images`` images (default all).
    image_batch_size : int
        Images loaded at a time (their pairs are split into each method's batch size).
    pointing_tolerance : float, optional
        Pixels; default TorchRay's 15 px at 224 scaled to the image size
        (:func:`~captum_ext.metrics.scaled_tolerance`).
    deletion_filler, insertion_filler : Filler, optional
        Substrates of the curves (default ``Constant(0)``).
    steps : int
        Steps of the deletion and insertion curves (28).
    saliency_alpha : float
        Threshold of the saliency metric's box.
    metric_batch_size : int
        Perturbed images per forward pass of the metrics.
    figure_rows : int
        Pairs kept for the figure grid (0: no figure).
    space : ImageSpace, optional
        Normalisation of the images, for the figure (default ``dataset.space`` if it
        has one, else identity).
    class_names : sequence of str, optional
        For the figure's row titles and the per-class table (default
        ``dataset.class_names`` if any).
    show_progress : bool
        Show progress bars.
    map_cache : dict, optional
        Keeps the every-class maps of Captum's perturbation methods per
        ``(method name, dataset index)`` (see :func:`all_class_maps`), for a later
        evaluation of the same images (:func:`~captum_ext.evaluation.explainer_tables.explainer_tables`)
        to reuse instead of sweeping again.

    Returns
    -------
    EvaluationResult
    """
    check_score(score)
    check_positive_int(image_batch_size, "image_batch_size")
    if not methods:
        raise ValueError("`methods` must hold at least one MethodSpec")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` have duplicate names: {names}")
    device = next(iter(model.parameters())).device
    if num_images is not None:
        check_positive_int(num_images, "num_images")
        dataset = Subset(dataset, range(min(num_images, len(dataset))))
    space = space or getattr(getattr(dataset, "dataset", dataset), "space", None) or ImageSpace()
    class_names = class_names or getattr(getattr(dataset, "dataset", dataset), "class_names", None)
    loader = DataLoader(dataset, batch_size=image_batch_size, collate_fn=collate_samples)
    scoring = _Scoring(
        model,
        score,
        pointing_tolerance,
        deletion_filler,
        insertion_filler,
        steps,
        saliency_alpha,
        metric_batch_size,
    )
    per_pair = {m.name: {key: [] for key in COLUMNS if key not in DERIVED} for m in methods}
    curves: dict[str, dict[str, list[Tensor]]] = {m.name: {k: [] for k in CURVES} for m in methods}
    sanity: dict[str, dict[str, list[Tensor]]] = {}
    pairs: list[tuple] = []
    figure: FigureRows | None = None
    image_size: list[int] = []
    seen = 0
    progress = tqdm(
        total=len(dataset) * len(methods),
        desc="evaluation",
        unit="image x method",
        disable=not show_progress,
    )
    with preserved_state([model], eval_mode=True), progress:
        built = {m.name: m.build(model) for m in methods}
        for batch in loader:
            batch_pairs = _Pairs.from_batch(batch, seen, device)
            count = batch["image"].shape[0]
            seen += count
            x = batch_pairs.inputs
            if x.shape[0] == 0:
                progress.update(count * len(methods))
                continue
            image_size = list(x.shape[-2:])
            keep = max(0, min(figure_rows - len(pairs), x.shape[0]))
            pairs += batch_pairs.ids
            if batch_pairs.masks is not None:
                for name, scores in sanity_rows(batch_pairs.masks, batch_pairs.valid).items():
                    for key, value in scores.items():
                        sanity.setdefault(name, {}).setdefault(key, []).append(value.cpu())
                if keep:
                    figure = _extend_figure(figure, batch_pairs, keep, space, class_names)
            for spec in methods:
                progress.set_postfix(method=spec.name)
                maps, seconds = _attribute_pairs(
                    built[spec.name],
                    spec,
                    x,
                    batch_pairs.target,
                    device,
                    batch_pairs.image,
                    [(spec.name, index) for index, _ in batch_pairs.ids],
                    map_cache,
                )
                per_pair[spec.name]["seconds_per_pair"] += seconds
                for key, value in scoring(batch_pairs, maps).items():
                    if key in CURVES:
                        curves[spec.name][key].append(value)
                    else:
                        per_pair[spec.name][key] += value.tolist()
                if keep and figure is not None:
                    shown = normalize_map(maps[:keep])[:, 0].cpu()
                    old = figure.maps.get(spec.name)
                    figure.maps[spec.name] = shown if old is None else torch.cat([old, shown])
                progress.update(count)
    if not pairs:
        raise ValueError("`dataset` has no image-class pair with ground truth to evaluate")
    settings = {
        "num_images": len(dataset),
        "num_pairs": len(pairs),
        "image_size": image_size,
        "score": score,
        "pointing_tolerance_px": (
            scaled_tolerance(image_size) if pointing_tolerance is None else pointing_tolerance
        ),
        "steps": steps,
        "deletion_filler": repr(deletion_filler) if deletion_filler else "Constant(0.0)",
        "insertion_filler": repr(insertion_filler) if insertion_filler else "Constant(0.0)",
        "saliency_alpha": saliency_alpha,
        "device": str(device),
        "methods": {
            m.name: {
                "attribute_kwargs": {k: repr(v) for k, v in m.attribute_kwargs.items()},
                "batch_size": m.batch_size,
            }
            for m in methods
        },
    }
    sanity_means = {
        name: {key: float(torch.cat(vals).mean()) for key, vals in scores.items()}
        for name, scores in sanity.items()
    }
    mean_curves = {
        name: {key: torch.cat(values).mean(dim=0).tolist() for key, values in by_key.items()}
        for name, by_key in curves.items()
    }
    return EvaluationResult(
        names,
        per_pair,
        pairs,
        sanity_means,
        settings,
        figure,
        mean_curves,
        scoring.fractions,
        list(class_names) if class_names is not None else None,
    )


def _attribute_pairs(
    attribution: Any,
    spec: MethodSpec,
    x: Tensor,
    target: Tensor,
    device: torch.device,
    image: Tensor | None = None,
    keys: Sequence[Hashable] | None = None,
    cache: dict[Hashable, Tensor] | None = None,
) -> tuple[Tensor, list[float]]:
    """Maps ``(P, 1, H, W)`` of ``spec`` in batches of pairs, and the seconds per pair.

    ``image`` (``(P,)``, which image of the batch each pair comes from) lets Captum's
    perturbation methods score every class of an image from one sweep
    (:func:`all_class_maps`, with its ``keys`` and ``cache``) instead of one sweep per
    pair.
    """
    if image is not None and isinstance(attribution, FeatureAblation):
        return _swept_pairs(attribution, spec, x, target, image, device, keys, cache)
    maps, seconds = [], []
    for start in range(0, x.shape[0], spec.batch_size):
        chunk = slice(start, start + spec.batch_size)
        _synchronize(device)
        t0 = time.perf_counter()
        attr = attribution.attribute(x[chunk], target=target[chunk], **dict(spec.attribute_kwargs))
        _synchronize(device)
        count = x[chunk].shape[0]
        seconds += [(time.perf_counter() - t0) / count] * count
        maps.append(attribution_map(attr.detach()))
    return torch.cat(maps), seconds


def all_class_maps(
    attribution: FeatureAblation,
    spec: MethodSpec,
    images: Tensor,
    keys: Sequence[Hashable] | None = None,
    cache: dict[Hashable, Tensor] | None = None,
) -> Tensor:
    """``(N, K, H, W)`` maps of every output class from one perturbation sweep per image.

    Captum's ``FeatureAblation`` family (``Occlusion`` included) scores all outputs of
    the same perturbed forward passes when ``target=None`` (one map per output,
    ``(N * K, ...)``): equal to K calls with ``target=c``, at a K-th of the forward
    passes. Images go in chunks of ``spec.batch_size``.

    With a ``cache`` (a dict the caller keeps), an image whose key (one per image, e.g.
    ``(method name, dataset index)``) is in it is not swept again, and new maps are
    added to it: two evaluations of the same images share one sweep.
    """
    if cache is None or keys is None:
        todo = list(range(images.shape[0]))
    else:
        todo = [i for i, key in enumerate(keys) if key not in cache]
    fresh = []
    for start in range(0, len(todo), spec.batch_size):
        chunk = images[todo[start : start + spec.batch_size]]
        attr = attribution.attribute(chunk, target=None, **dict(spec.attribute_kwargs))
        fresh.append(
            attribution_map(attr.detach())[:, 0].view(chunk.shape[0], -1, *chunk.shape[-2:])
        )
    if cache is None or keys is None:
        return torch.cat(fresh)
    if fresh:
        cache.update(zip((keys[i] for i in todo), torch.cat(fresh)))
    return torch.stack([cache[key] for key in keys])


def _swept_pairs(
    attribution: FeatureAblation,
    spec: MethodSpec,
    x: Tensor,
    target: Tensor,
    image: Tensor,
    device: torch.device,
    keys: Sequence[Hashable] | None = None,
    cache: dict[Hashable, Tensor] | None = None,
) -> tuple[Tensor, list[float]]:
    """:func:`_attribute_pairs` for the ``FeatureAblation`` family: one sweep per image.

    ``keys`` (one per pair) name the pair's image in ``cache``.
    """
    images, first = torch.unique(image, return_inverse=True)
    # The first pair of each image stands for it (pairs of one image share its input).
    pick = (
        torch.zeros_like(images)
        .scatter_(0, first, torch.arange(image.numel(), device=image.device))
        .cpu()
    )
    _synchronize(device)
    t0 = time.perf_counter()
    maps = all_class_maps(
        attribution,
        spec,
        x[pick.to(x.device)],
        None if keys is None else [keys[i] for i in pick.tolist()],
        cache,
    )
    _synchronize(device)
    seconds = (time.perf_counter() - t0) / x.shape[0]
    return maps[first.to(maps.device), target].unsqueeze(1), [seconds] * x.shape[0]


def _extend_figure(
    figure: FigureRows | None,
    pairs: _Pairs,
    keep: int,
    space: ImageSpace,
    class_names: Sequence[str] | None,
) -> FigureRows:
    images = space.to_pixels(pairs.inputs[:keep]).clamp(0, 1).cpu()
    gt = pairs.masks[:keep].float().cpu()
    titles = [class_names[c] if class_names else f"class {c}" for _, c in pairs.ids[:keep]]
    if figure is None:
        return FigureRows(images, gt, titles)
    figure.images = torch.cat([figure.images, images])
    figure.ground_truth = torch.cat([figure.ground_truth, gt])
    figure.titles += titles
    return figure
