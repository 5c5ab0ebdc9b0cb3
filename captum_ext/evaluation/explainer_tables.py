"""Stalder et al. Tables 1 and 2 for any set of attribution methods.

* **Table 1** (class-specific masking): for every target class, the classifier's mean
  softmax score on the images containing it, unmasked ("none") and masked with each
  class's mask thresholded at 0.1 ... 0.9 (:func:`~captum_ext.metrics.class_masking_matrix`).
* **Table 2** (segmentation): per image, the aggregated mask of its ground-truth classes
  (pixel-wise maximum of their class masks) against the union of their ground-truth
  masks: soft accuracy, continuous IoU, mask saliency (eq. 9) and MAE, with the
  constant 0 / 0.5 / 1 and ground-truth sanity rows.

Class masks are the Explainer's ``sigmoid(S_c)`` (all classes from one forward pass,
:meth:`~captum_ext.attr.ExplainerAttribution.class_masks`) and, for every other method,
its map for that class clamped at 0 and divided by its maximum
(:func:`~captum_ext.metrics.normalize_map`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from captum.attr import FeatureAblation
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from captum_ext.attr.explainer import ExplainerAttribution
from captum_ext.data.samples import collate_samples
from captum_ext.evaluation.harness import _attribute_pairs, all_class_maps
from captum_ext.evaluation.methods import MethodSpec
from captum_ext.metrics import (
    DEFAULT_THRESHOLDS,
    class_masking_matrix,
    mask_saliency,
    normalize_map,
    sanity_masks,
    segmentation_scores,
)
from captum_ext.metrics.masking_matrix import masking_matrix_ratio
from captum_ext.utils import preserved_state, to_json

PathLike = str | Path
#: Table 2 columns: key -> (header, higher is better).
TABLE2_COLUMNS = {
    "accuracy": ("Acc", True),
    "iou": ("IoU", True),
    "saliency": ("Sal", False),
    "mae": ("MAE", False),
}


@dataclass
class ExplainerTables:
    """Results of :func:`explainer_tables`.

    Attributes
    ----------
    class_names : list of str
        Names of the classes (rows and mask columns of Table 1).
    table1 : dict
        ``method -> (K, K + 1)`` list of lists: row = target class, column 0 = "none",
        column ``j + 1`` = masked with class ``j``'s mask (mean softmax score).
    table2 : dict
        ``method -> {"accuracy", "iou", "saliency", "mae"}`` means over images.
    sanity : dict
        ``"0" | "0.5" | "1" | "G.T." -> {"accuracy", "iou", "saliency", "mae"}``.
    settings : dict
        Parameters of the run.
    """

    class_names: list[str]
    table1: dict[str, list[list[float]]] = field(default_factory=dict)
    table2: dict[str, dict[str, float]] = field(default_factory=dict)
    sanity: dict[str, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def diagonal_ratio(self, method: str) -> float:
        """Mean diagonal over mean off-diagonal of ``method``'s Table 1 (higher = more class-specific)."""
        return float(masking_matrix_ratio(torch.tensor(self.table1[method])))


def class_maps(
    attribution: Any,
    spec: MethodSpec,
    images: Tensor,
    wanted: Tensor,
    keys: Sequence[Hashable] | None = None,
    cache: dict[Hashable, Tensor] | None = None,
) -> Tensor:
    """``(N, K, H, W)`` class masks in [0, 1]; zero where ``wanted`` (``(N, K)`` bool) is False.

    An :class:`~captum_ext.attr.ExplainerAttribution` gives every class from one
    forward pass (its sigmoid masks, unnormalised, as the paper). Captum's perturbation
    methods (``FeatureAblation``, ``Occlusion``) get one sweep per image that scores
    every class from the same perturbed forward passes (``target=None``: one map per
    output), reused from ``cache`` under ``keys`` (see
    :func:`~captum_ext.evaluation.harness.all_class_maps`). Other methods get one
    ``attribute`` call per wanted image-class pair (batched by ``spec.batch_size``).
    Maps are clamped at 0 and divided by their maximum.
    """
    if isinstance(attribution, ExplainerAttribution):
        return attribution.class_masks(images)
    n, k = wanted.shape
    if isinstance(attribution, FeatureAblation) and (cache is not None or int(wanted.sum()) > n):
        swept = all_class_maps(attribution, spec, images, keys, cache)
        maps = normalize_map(swept.flatten(0, 1)[:, None])
        return maps.view(n, k, *images.shape[-2:]) * wanted[:, :, None, None]
    out = torch.zeros(n, k, *images.shape[-2:], device=images.device)
    img, cls = wanted.nonzero(as_tuple=True)
    if img.numel():
        maps, _ = _attribute_pairs(attribution, spec, images[img], cls, images.device)
        out[img, cls] = normalize_map(maps)[:, 0]
    return out


def _table2_rows(
    model: nn.Module,
    images: Tensor,
    masks: Tensor,
    gt: Tensor,
    labels: Tensor,
    valid: Tensor | None,
) -> dict[str, Tensor]:
    scores = segmentation_scores(masks, gt, valid)
    scores["saliency"] = mask_saliency(model, images, masks, labels, score="softmax")
    return scores


def explainer_tables(
    model: nn.Module,
    dataset: Dataset,
    methods: Sequence[MethodSpec],
    *,
    num_images: int | None = None,
    table1_images: int | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    image_batch_size: int = 16,
    class_names: Sequence[str] | None = None,
    show_progress: bool = True,
    map_cache: dict[Hashable, Tensor] | None = None,
) -> ExplainerTables:
    """Compute Tables 1 and 2 of Stalder et al. for ``methods`` on ``dataset``.

    Parameters
    ----------
    model : nn.Module
        The classifier (eval mode for the run, restored afterwards).
    dataset : Dataset
        Samples with ``image``, ``labels`` and per-class ``masks`` (optional ``valid``).
    methods : sequence of MethodSpec
        The methods (e.g. from :func:`~captum_ext.evaluation.methods.default_methods`).
    num_images : int, optional
        Images of Table 2 (the first ones; default all).
    table1_images : int, optional
        Images of Table 1, the first ones (default ``num_images``). Table 1 needs every
        class's map of every image: K attribution calls per image for the non-Explainer
        methods.
    thresholds : sequence of float
        Mask thresholds of Table 1.
    image_batch_size : int
        Images loaded at a time.
    class_names : sequence of str, optional
        Default ``dataset.class_names`` or ``class i``.
    show_progress : bool
        Show a progress bar.
    map_cache : dict, optional
        Every-class maps of Captum's perturbation methods per ``(method name, dataset
        index)``, filled by an earlier :func:`~captum_ext.evaluation.harness.evaluate_attributions`
        of the same dataset (its ``map_cache``): those images are not swept again.
    """
    device = next(iter(model.parameters())).device
    total = len(dataset) if num_images is None else min(num_images, len(dataset))
    table1_count = total if table1_images is None else min(table1_images, total)
    loader = DataLoader(
        Subset(dataset, range(total)), batch_size=image_batch_size, collate_fn=collate_samples
    )
    sums: dict[str, dict[str, list[Tensor]]] = {
        m.name: {k: [] for k in TABLE2_COLUMNS} for m in methods
    }
    sanity: dict[str, dict[str, list[Tensor]]] = {}
    table1_parts: dict[str, list[Tensor]] = {m.name: [] for m in methods}
    table1_data: dict[str, list[Tensor]] = {"images": [], "labels": []}
    num_classes = None
    with preserved_state([model], eval_mode=True):
        built = {m.name: m.build(model) for m in methods}
        seen = 0
        for batch in tqdm(loader, desc="Stalder tables", disable=not show_progress):
            images = batch["image"].to(device)
            labels = batch["labels"].to(device) > 0.5
            gt_all = batch["masks"].to(device)
            valid = batch["valid"].to(device) if "valid" in batch else None
            num_classes = labels.shape[1]
            in_table1 = max(0, min(table1_count - seen, images.shape[0]))
            seen += images.shape[0]
            keep = (
                labels.any(dim=1)
                if valid is None
                else labels.any(dim=1) & valid.flatten(1).any(dim=1)
            )
            present = labels[:, :, None, None]
            gt = (gt_all * present).amax(dim=1, keepdim=True)
            for name, mask in sanity_masks(gt[keep]).items():
                rows = _table2_rows(
                    model,
                    images[keep],
                    mask,
                    gt[keep],
                    labels[keep],
                    None if valid is None else valid[keep],
                )
                for key, value in rows.items():
                    sanity.setdefault(name, {}).setdefault(key, []).append(value.cpu())
            # Table 1 needs every class of its images, Table 2 only the present ones.
            wanted = labels.clone()
            wanted[:in_table1] = True
            for spec in methods:
                maps = class_maps(
                    built[spec.name],
                    spec,
                    images,
                    wanted,
                    [(spec.name, int(i)) for i in batch["index"]] if "index" in batch else None,
                    map_cache,
                )
                if in_table1:
                    table1_parts[spec.name].append(maps[:in_table1].cpu())
                aggregated = (maps * present).amax(dim=1, keepdim=True)
                rows = _table2_rows(
                    model,
                    images[keep],
                    aggregated[keep],
                    gt[keep],
                    labels[keep],
                    None if valid is None else valid[keep],
                )
                for key, value in rows.items():
                    sums[spec.name][key].append(value.cpu())
            if in_table1:
                table1_data["images"].append(images[:in_table1].cpu())
                table1_data["labels"].append(labels[:in_table1].cpu())
        names = list(
            class_names
            or getattr(dataset, "class_names", None)
            or [f"class {i}" for i in range(num_classes or 0)]
        )
        result = ExplainerTables(names)
        if table1_data["images"]:
            x1 = torch.cat(table1_data["images"]).to(device)
            y1 = torch.cat(table1_data["labels"]).to(device)
            for spec in methods:
                masks = torch.cat(table1_parts[spec.name]).to(device)
                matrix = class_masking_matrix(
                    model, x1, masks, y1, thresholds=thresholds, score="softmax"
                )
                result.table1[spec.name] = matrix.cpu().tolist()
    result.table2 = {
        name: {key: float(torch.cat(values).mean()) for key, values in cols.items()}
        for name, cols in sums.items()
    }
    result.sanity = {
        name: {key: float(torch.cat(values).mean()) for key, values in cols.items()}
        for name, cols in sanity.items()
    }
    result.settings = {
        "table2_images": total,
        "table1_images": table1_count,
        "thresholds": [float(t) for t in thresholds],
        "score": "softmax (Table 1 and mask saliency, as the paper)",
        "device": str(device),
    }
    return result


def _cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


def tables_markdown(result: ExplainerTables) -> str:
    """Tables 1 and 2 as Markdown (scores in percent, as the paper; Sal in nats)."""
    lines = ["## Table 1: class-specific masking (mean softmax score, %)", ""]
    header = "| Target class | none | " + " | ".join(result.class_names) + " |"
    for method, matrix in result.table1.items():
        lines += [
            f"**{method}** (mean diagonal / mean off-diagonal = "
            f"{result.diagonal_ratio(method):.1f})",
            "",
            header,
            "|---|" + "---:|" * (len(result.class_names) + 1),
        ]
        for name, row in zip(result.class_names, matrix):
            lines.append(f"| {name} | " + " | ".join(_cell(v) for v in row) + " |")
        lines.append("")
    lines += ["## Table 2: segmentation of the aggregated masks", ""]
    rows = list(result.sanity.items()) + list(result.table2.items())
    lines.append("| Metric | " + " | ".join(name for name, _ in rows) + " |")
    lines.append("|---|" + "---:|" * len(rows))
    for key, (header, up) in TABLE2_COLUMNS.items():
        cells = [f"{v[key]:.2f}" if key == "saliency" else _cell(v[key]) for _, v in rows]
        lines.append(f"| {'↑' if up else '↓'} {header} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_tables(result: ExplainerTables, output_dir: PathLike) -> dict[str, Path]:
    """Write ``tables.md`` and ``tables.json`` to ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = "\n".join(f"- {k}: {v}" for k, v in result.settings.items())
    markdown = out / "tables.md"
    markdown.write_text(
        "# Stalder et al. Tables 1 and 2\n\n"
        + tables_markdown(result)
        + "\n\n## Settings\n\n"
        + settings
        + "\n"
    )
    payload = {
        "class_names": result.class_names,
        "table1": result.table1,
        "table1_diagonal_ratio": {m: result.diagonal_ratio(m) for m in result.table1},
        "table2": result.table2,
        "sanity": result.sanity,
        "settings": result.settings,
    }
    path = out / "tables.json"
    path.write_text(json.dumps(to_json(payload), indent=2, allow_nan=False) + "\n")
    return {"markdown": markdown, "json": path}


def write_class_masks_figure(
    model: nn.Module,
    dataset: Dataset,
    methods: Sequence[MethodSpec],
    path: PathLike,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Per-class maps of the first image with two or more classes, one row per method.

    The first row shows the image and each present class's ground-truth mask; every
    other row a method's map of each present class (``class_maps``, in [0, 1]). A
    class-specific method keeps each class's own object in its column and not the
    other's. Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot state).

    Parameters
    ----------
    model : nn.Module
        The classifier.
    dataset : Dataset
        Samples with ``image``, ``labels`` and ``masks``; its ``space`` (if any) turns
        the image back into pixels.
    methods : sequence of MethodSpec
        One row each.
    path : path
        The PNG written.
    class_names : sequence of str, optional
        Column titles; default ``dataset.class_names``, else the class indices.

    Raises
    ------
    ValueError
        If no image of ``dataset`` holds two classes.
    """
    from captum_ext.evaluation.report import Figure

    sample = next(
        (dataset[i] for i in range(len(dataset)) if int((dataset[i]["labels"] > 0.5).sum()) >= 2),
        None,
    )
    if sample is None:
        raise ValueError("no image of the dataset holds two or more classes")
    device = next(iter(model.parameters())).device
    image = sample["image"][None].to(device)
    present = (sample["labels"] > 0.5).nonzero().flatten().tolist()
    wanted = torch.zeros(1, sample["labels"].numel(), dtype=torch.bool, device=device)
    wanted[0, present] = True
    names = list(
        class_names
        or getattr(dataset, "class_names", None)
        or [str(c) for c in range(sample["labels"].numel())]
    )
    space = getattr(dataset, "space", None)
    shown = space.to_pixels(image)[0] if space is not None else image[0]
    rows = [("image / ground truth", [shown.clamp(0, 1).permute(1, 2, 0).cpu()])]
    rows[0][1].extend(sample["masks"][c].float() for c in present)
    for spec in methods:
        maps = class_maps(spec.build(model), spec, image, wanted)[0].detach().cpu()
        rows.append((spec.name, [None] + [maps[c] for c in present]))
    cols = 1 + len(present)
    fig = Figure(figsize=(1.9 * cols, 1.9 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (label, panels) in enumerate(rows):
        for c, data in enumerate(panels):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if data is None:
                ax.axis("off")
                ax.text(0.5, 0.5, label, ha="center", va="center", fontsize=9)
                continue
            ax.imshow(data.numpy(), cmap=None if data.dim() == 3 else "jet", vmin=0, vmax=1)
            if r == 0:
                ax.set_title("image" if c == 0 else f"class {names[present[c - 1]]}", fontsize=8)
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


#: Methods of the shapes-world Explainer evaluation (registry names), in report order.
SHAPES_EXPLAINER_METHODS = ("explainer", "rtis", "gradcam", "occlusion")


def evaluate_explainer_shapes_world(
    output_dir: PathLike = "reports/shapes-explainer",
    num_images: int = 500,
    table1_images: int | None = 100,
    image_size: int = 64,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
    checkpoint_dir: PathLike | None = None,
):
    """The shapes-world evaluation of the learned Explainer and its baselines.

    Runs the evaluation harness (per image-class pair: pointing game, continuous IoU,
    soft accuracy, MAE, deletion / insertion AUC, saliency metric) and Stalder et al.'s
    Tables 1 and 2 on held-out test images, with the shipped classifier and Explainer
    networks; writes ``metrics.md/json``, ``figure.png``, ``tables.md/json`` and
    ``class_masks.png`` (:func:`write_class_masks_figure`).

    Parameters
    ----------
    output_dir : path
        Report directory.
    num_images : int
        Test images of the harness and of Table 2.
    table1_images : int, optional
        Test images of Table 1 (K attribution calls per image for the slow methods;
        default 100, ``None`` = ``num_images``).
    image_size : int
        Image side (the shipped networks were trained at 64).
    methods : sequence of str, optional
        Registry names (default :data:`SHAPES_EXPLAINER_METHODS`).
    seed : int
        Base seed of the shapes world.
    device : str or torch.device
        Where the networks and data go.
    show_progress : bool
        Show progress bars.
    checkpoint_dir : path, optional
        A directory whose ``shapes_explainer.pt`` / ``shapes_explainer_rtis.pt`` /
        ``shapes_classifier.pt`` replace the shipped ones (e.g. a retrained Explainer).

    Returns
    -------
    (EvaluationResult, ExplainerTables)
    """
    from captum_ext.data.shapes import ShapesDataset
    from captum_ext.evaluation.harness import evaluate_attributions
    from captum_ext.evaluation.methods import default_methods
    from captum_ext.evaluation.report import write_report
    from captum_ext.evaluation.shapes_world import SHAPES_SCORE
    from captum_ext.models.pretrained import load_shapes_classifier

    model = load_shapes_classifier(device=device, checkpoint_dir=checkpoint_dir)
    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    specs = default_methods(
        image_size,
        score=SHAPES_SCORE,
        space=dataset.space,
        include=list(methods or SHAPES_EXPLAINER_METHODS),
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
    )
    # Occlusion's every-class sweeps of the harness serve the tables too.
    map_cache: dict = {}
    result = evaluate_attributions(
        model,
        dataset,
        specs,
        score=SHAPES_SCORE,
        show_progress=show_progress,
        map_cache=map_cache,
    )
    result.settings["dataset"] = (
        f"ShapesDataset(num_images={num_images}, image_size={image_size}, seed={seed}, split='test')"
    )
    write_report(result, output_dir)
    tables = explainer_tables(
        model,
        dataset,
        specs,
        table1_images=table1_images,
        show_progress=show_progress,
        map_cache=map_cache,
    )
    tables.settings["dataset"] = result.settings["dataset"]
    write_tables(tables, output_dir)
    write_class_masks_figure(
        model, dataset, specs, Path(output_dir) / "class_masks.png", tables.class_names
    )
    return result, tables
