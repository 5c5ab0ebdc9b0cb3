"""Experiments of Agarwal & Nguyen (2020) on the shapes world.

* :func:`run_removal_effectiveness` - Table 1: remove the ground-truth objects with
  constant, blur, noise and inpainting fillers; the classifier's recall on the removed
  class and the similarity of the filled image to the original.
* :func:`run_generative_evaluation` - Tables 2-3: pointing game, IoU and deletion AUC of
  SP, SP-G, LIME, LIME-G, MP2 and MP2-G through the evaluation harness, with the
  deletion AUC also measured on other substrates than the paper's constant fill.
* :func:`run_sensitivity` - Sec. 4.4: similarity (SSIM, HOG-Pearson, Spearman) between
  maps across LIME seeds and SP patch sizes, G vs non-G.

Each writes Markdown + JSON (+ a PNG figure) into an output directory.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from captum_ext.attr import SlidingPatch, SuperpixelLime
from captum_ext.data.inpainting import InpaintingDataset
from captum_ext.data.object_masking import default_dilation, remove_objects
from captum_ext.data.shapes import ShapesDataset
from captum_ext.data.shapes_world import generate_backgrounds
from captum_ext.evaluation.classifier_robustness import removal_effectiveness
from captum_ext.evaluation.harness import evaluate_attributions
from captum_ext.evaluation.methods import (
    GENERATIVE_METHODS,
    MethodContext,
    MethodSpec,
    default_methods,
)
from captum_ext.evaluation.report import markdown_table, write_report
from captum_ext.fillers import Blur, Constant, Filler, ImageSpace, Inpaint, UniformNoise
from captum_ext.inpainters import OpenCVInpainter
from captum_ext.metrics import (
    attribution_map,
    deletion_auc,
    hog_pearson,
    map_ssim,
    mean_pairwise_similarity,
    spearman,
)
from captum_ext.models.pretrained import (
    checkpoint_path,
    load_shapes_classifier,
    load_shapes_inpainter,
)
from captum_ext.training.inpainting_losses import gradient_energy, masked_l1, texture_loss
from captum_ext.utils import require, scaled_size, write_markdown_json

Figure = require("matplotlib.figure", extra="report").Figure

PathLike = str | Path

#: The shapes-world classifier is multi-label.
SCORE = "sigmoid"
#: Row label of the removal table's learned inpainter, followed by its file (or "shipped").
LEARNED = "inpaint: learned"


def _model(classifier: PathLike | None, device: str | torch.device) -> nn.Module:
    return load_shapes_classifier(classifier, device=device)


# --------------------------------------------------------------------- Table 1
def removal_fillers(
    space: ImageSpace, inpainters: Mapping[str, Any], blur_sigma: float = 10.0
) -> dict[str, Filler]:
    """The fillers of Agarwal Table 1 (+ black), then one ``Inpaint`` per inpainter.

    ``grey``: ``Constant(0)``, the mean colour of the normalised space (the papers'
    gray); ``black``: pixel 0; ``blur``: Gaussian blur (sigma in pixels);
    ``noise``: uniform noise in pixel space.
    """
    fillers: dict[str, Filler] = {
        "grey (mean colour)": Constant(0.0),
        "black": Constant(0.0, space=space),
        f"blur (sigma {blur_sigma:g})": Blur(blur_sigma),
        "uniform noise": UniformNoise(space),
    }
    fillers.update({name: Inpaint(inpainter, space) for name, inpainter in inpainters.items()})
    return fillers


@torch.no_grad()
def inpainting_quality(
    inpainters: Mapping[str, Any],
    num_images: int = 200,
    image_size: int = 64,
    seed: int = 0,
    batch_size: int = 100,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float]]:
    """How well inpainters restore held-out object-free shapes-world backgrounds.

    Random holes of every kind (:func:`~captum_ext.data.holes.random_holes`, fixed by
    ``seed``) are cut out of ``num_images`` backgrounds never seen in training and filled.
    Reported: L1 error inside the holes, the texture loss, and the ratio of the fill's
    gradient energy to the true background's inside the holes (1 = as much texture as
    the real background; a smooth fill is far below 1).
    """
    backgrounds = generate_backgrounds(num_images, image_size, seed=seed + 2_000_003)
    data = InpaintingDataset(backgrounds, seed=seed, fixed_holes=True, flip=False)
    samples = [data[i] for i in range(len(data))]
    images = torch.stack([s["image"] for s in samples])
    holes = torch.stack([s["holes"] for s in samples])
    out: dict[str, dict[str, float]] = {}
    for name, inpainter in inpainters.items():
        filled = torch.cat(
            [
                inpainter(images[s].to(device), holes[s].to(device)).cpu()
                for s in _slices(num_images, batch_size)
            ]
        )
        weight = holes.float()
        out[name] = {
            "l1_hole": float(masked_l1(filled, images, weight)),
            "texture_loss": float(texture_loss(filled, images, weight)),
            "grad_energy_ratio": float(
                gradient_energy(filled, weight) / gradient_energy(images, weight)
            ),
        }
    return out


def _removal_figure(
    dataset: ShapesDataset, fillers: Mapping[str, Filler], rows: int, path: Path, seed: int
) -> Path:
    samples = [dataset[i] for i in range(min(rows, len(dataset)))]
    images = torch.stack([s["image"] for s in samples])
    masks = torch.stack([s["masks"] for s in samples])
    radius = default_dilation(images.shape[-1])
    generator = torch.Generator().manual_seed(seed)
    columns = {"original": images}
    for name, filler in fillers.items():
        columns[name] = remove_objects(images, masks, filler, radius, generator)
    fig = Figure(figsize=(1.6 * len(columns), 1.6 * len(samples)))
    for r in range(len(samples)):
        for c, (name, batch) in enumerate(columns.items()):
            ax = fig.add_subplot(len(samples), len(columns), r * len(columns) + c + 1)
            pixels = dataset.space.to_pixels(batch[r : r + 1])[0].clamp(0, 1)
            ax.imshow(pixels.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def run_removal_effectiveness(
    output_dir: PathLike = "reports/removal",
    num_images: int = 500,
    image_size: int = 64,
    seed: int = 0,
    classifier: PathLike | None = None,
    inpainter: PathLike | None = None,
    extra_inpainters: Mapping[str, PathLike] | None = None,
    blur_sigma: float = 10.0,
    quality_images: int = 200,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
    checkpoint_dir: PathLike | None = None,
) -> dict[str, dict[str, float]]:
    """Agarwal Table 1 on held-out shapes-world images; writes ``removal.{md,json,png}``.

    Parameters
    ----------
    output_dir : path
        Report directory.
    num_images : int
        Test images (every class present is one image-class pair).
    image_size : int
        Image side.
    seed : int
        Base seed of the shapes world (and of the noise filler).
    classifier : path, optional
        Classifier weights file, or a shipped classifier's name (default:
        ``"shapes_classifier"``).
    inpainter : path, optional
        Learned-inpainter weights (default: the shipped inpainter).
    extra_inpainters : mapping, optional
        More learned inpainters to compare, ``name -> weights file``.
    blur_sigma : float
        Sigma of the blur filler, in pixels.
    quality_images : int
        Held-out backgrounds of the inpainting-quality table.
    device : str or torch.device
        Where the models run.
    show_progress : bool
        Show a progress bar.
    checkpoint_dir : path, optional
        A directory whose networks (``shapes_classifier.pt``, ``shapes_inpainter.pt``)
        replace the shipped ones where ``classifier`` / ``inpainter`` are not given.
    """
    model = load_shapes_classifier(classifier, device=device, checkpoint_dir=checkpoint_dir)
    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    learned = Path(inpainter or checkpoint_path("shapes_inpainter", checkpoint_dir))
    shipped = learned == checkpoint_path("shapes_inpainter")
    inpainters: dict[str, Any] = {
        "inpaint: OpenCV Telea": OpenCVInpainter("telea"),
        "inpaint: OpenCV Navier-Stokes": OpenCVInpainter("ns"),
        f"{LEARNED} ({'shipped' if shipped else learned.name})": load_shapes_inpainter(
            learned, device=device
        ),
    }
    for name, path in (extra_inpainters or {}).items():
        inpainters[f"inpaint: {name}"] = load_shapes_inpainter(path, device=device)
    fillers = removal_fillers(dataset.space, inpainters, blur_sigma)
    table = removal_effectiveness(model, dataset, fillers, seed=seed, show_progress=show_progress)
    lines = [
        "# Removing the objects (Agarwal & Nguyen Table 1, shapes world)",
        "",
        f"{table['none']['pairs']} image-class pairs from {num_images} held-out images "
        f"({image_size} x {image_size}); for each pair the objects of the class (dilated by "
        f"{default_dilation(image_size)} px) are filled. Recall: the classifier still detects "
        "the removed class (sigmoid > 0.5), lower = evidence removed. Other recall: the other "
        "classes of the image are still detected. SSIM / MS-SSIM (3 scales) to the original "
        "in pixel space, lower = more different.",
        "",
        "| Filler | Recall (removed) ↓ | Other recall ↑ | SSIM | MS-SSIM |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in table.items():
        lines.append(
            f"| {name} | {row['recall']:.3f} | {row['other_recall']:.3f} | "
            f"{row['ssim']:.3f} | {row['ms_ssim']:.3f} |"
        )
    quality = inpainting_quality(inpainters, quality_images, image_size, seed, device=device)
    lines += [
        "",
        "## Inpainting quality on held-out backgrounds",
        "",
        f"{quality_images} object-free backgrounds never seen in training, random holes of "
        "every kind (boxes, superpixel unions, strokes, object-sized blobs). Gradient-energy "
        "ratio: the fill's mean squared pixel difference over the true background's inside the "
        "holes "
        "(1 = as much texture as the real background; a smooth fill is far below 1).",
        "",
        "| Inpainter | L1 in holes ↓ | Texture loss ↓ | Gradient-energy ratio (→ 1) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in quality.items():
        lines.append(
            f"| {name} | {row['l1_hole']:.4f} | {row['texture_loss']:.4f} | "
            f"{row['grad_energy_ratio']:.3f} |"
        )
    data = {
        "table": table,
        "inpainting_quality": quality,
        "settings": {"num_images": num_images, "image_size": image_size, "seed": seed},
    }
    write_markdown_json(output_dir, "removal", "\n".join(lines), data)
    _removal_figure(dataset, fillers, 6, Path(output_dir) / "removal.png", seed)
    return table


# --------------------------------------------------------------------- Tables 2-3
class RecordedAttribution:
    """Wrap an attribution, keeping every call's inputs, targets and ``(B, 1, H, W)`` maps."""

    def __init__(self, attribution: Any) -> None:
        self.attribution = attribution
        self.inputs: list[Tensor] = []
        self.targets: list[Tensor] = []
        self.maps: list[Tensor] = []

    def attribute(self, inputs: Tensor, target: Any = None, **kwargs: Any) -> Tensor:
        out = self.attribution.attribute(inputs, target=target, **kwargs)
        self.inputs.append(inputs.detach())
        self.targets.append(torch.as_tensor(target).detach())
        self.maps.append(attribution_map(out.detach()))
        return out


def run_generative_evaluation(
    output_dir: PathLike = "reports/generative",
    num_images: int = 500,
    image_size: int = 64,
    methods: Sequence[str] = GENERATIVE_METHODS,
    lime_samples: int | None = None,
    seed: int = 0,
    classifier: PathLike | None = None,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
    inpainter: PathLike | None = None,
) -> dict[str, Any]:
    """Agarwal Tables 2-3 on the shapes world, through the evaluation harness.

    Runs the registered methods (default SP, SP-G, LIME, LIME-G, MP2, MP2-G; G = the
    shipped learned inpainter) on every image-class pair of ``num_images`` held-out
    images and writes the harness report (``metrics.md``, ``metrics.json``,
    ``figure.png``). The harness's deletion AUC uses the paper's substrate (constant
    fill, the mean colour); the same maps are then scored with the deletion metric on a
    blur substrate and on the learned inpainter (``deletion.md`` / ``deletion.json``),
    whether each -G method has a lower deletion AUC than its twin (the paper's finding) is
    reported per substrate.

    Parameters
    ----------
    output_dir : path
        Report directory.
    num_images : int
        Held-out images.
    image_size : int
        Image side.
    methods : sequence of str
        Names from :data:`~captum_ext.evaluation.methods.METHODS`.
    lime_samples : int, optional
        Override LIME's number of samples (paper: 1,000) to save time.
    seed : int
        Base seed of the shapes world.
    classifier : path, optional
        Classifier weights file, or a shipped classifier's name (default:
        ``"shapes_classifier"``).
    device : str or torch.device
        Where the models run.
    show_progress : bool
        Show progress bars.
    inpainter : path, optional
        Learned-inpainter weights (``captum-ext train-inpainter --export``) for the -G
        methods and the learned-inpainting substrate; default the shipped one (trained
        on 64 x 64 backgrounds).
    """
    model = _model(classifier, device)
    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    inpainter = None if inpainter is None else Path(inpainter)
    specs = default_methods(
        image_size, score=SCORE, space=dataset.space, include=list(methods), inpainter=inpainter
    )
    if lime_samples is not None:
        for spec in specs:
            if "n_samples" in spec.attribute_kwargs:
                spec.attribute_kwargs = {**spec.attribute_kwargs, "n_samples": lime_samples}
    specs, recorders = recorded_specs(specs)
    result = evaluate_attributions(model, dataset, specs, score=SCORE, show_progress=show_progress)
    result.settings["dataset"] = (
        f"ShapesDataset(num_images={num_images}, image_size={image_size}, seed={seed}, "
        "split='test')"
    )
    write_report(result, output_dir)

    substrates = deletion_substrates(
        dataset.space, image_size, load_shapes_inpainter(inpainter, device=device)
    )
    deletion = deletion_by_substrate(model, recorders, substrates, show_progress=show_progress)
    beats_twin = beats_twin_table(deletion)
    markdown = "\n".join(
        [
            "# Generative-removal methods on the shapes world (Agarwal & Nguyen Tables 2-3)",
            "",
            markdown_table(result),
            "",
            substrate_markdown(deletion, beats_twin, pairs=len(result.pairs)),
        ]
    )
    write_markdown_json(
        output_dir, "deletion", markdown, {"deletion_auc": deletion, "beats_twin": beats_twin}
    )
    return {"table": result.table(), "deletion_auc": deletion, "beats_twin": beats_twin}


def twin_names(names: Iterable[str]) -> set[str]:
    """The -G methods among ``names`` whose twin is there too, and those twins.

    Examples
    --------
    >>> sorted(twin_names(["SP", "SP-G", "LIME-G", "GradCAM"]))
    ['SP', 'SP-G']
    """
    names = set(names)
    generative = {n for n in names if n.endswith("-G") and n[:-2] in names}
    return generative | {n[:-2] for n in generative}


def recorded_specs(
    specs: Sequence[MethodSpec], only: Collection[str] | None = None
) -> tuple[list[MethodSpec], dict[str, RecordedAttribution]]:
    """The specs with their attributions wrapped in :class:`RecordedAttribution`.

    Only the specs named in ``only`` are wrapped (all by default). Returns the specs
    and ``name -> recorder``, filled as the harness runs them.
    """
    recorders: dict[str, RecordedAttribution] = {}

    def recorded(spec: MethodSpec) -> MethodSpec:
        def build(model: nn.Module, spec: MethodSpec = spec) -> RecordedAttribution:
            recorders[spec.name] = RecordedAttribution(spec.build(model))
            return recorders[spec.name]

        return dataclasses.replace(spec, build=build)

    return [recorded(s) if only is None or s.name in only else s for s in specs], recorders


def deletion_substrates(space: ImageSpace, image_size: int, inpainter: Any) -> dict[str, Filler]:
    """The deletion metric's substrates: the paper's constant, blur and ``inpainter``.

    The blur's sigma is 10 px at 224 x 224, scaled to ``image_size`` (MP2's filler).
    """
    sigma = MethodContext((image_size, image_size)).scaled(10)
    return {
        "constant (paper)": Constant(0.0),
        f"blur (sigma {sigma})": Blur(float(sigma)),
        "learned inpainting": Inpaint(inpainter, space),
    }


def deletion_by_substrate(
    model: nn.Module,
    recorders: Mapping[str, RecordedAttribution],
    substrates: Mapping[str, Filler],
    *,
    show_progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Mean deletion AUC of each recorded method's maps on each substrate."""
    deletion: dict[str, dict[str, float]] = {}
    for name, recorder in tqdm(
        recorders.items(), desc="deletion substrates", disable=not show_progress
    ):
        inputs, targets = torch.cat(recorder.inputs), torch.cat(recorder.targets)
        maps = torch.cat(recorder.maps)
        deletion[name] = {}
        for substrate, filler in substrates.items():
            aucs = [
                deletion_auc(model, inputs[s], maps[s], targets[s], filler=filler, score=SCORE)
                for s in _slices(inputs.shape[0], 256)
            ]
            deletion[name][substrate] = float(torch.cat(aucs).mean())
    return deletion


def _slices(total: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, total)) for s in range(0, total, size)]


def beats_twin_table(deletion: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, bool]]:
    """Per substrate: does each ``X-G`` method beat (lower deletion AUC) its twin ``X``?"""
    out: dict[str, dict[str, bool]] = {}
    for name, row in deletion.items():
        if name.endswith("-G") and name[:-2] in deletion:
            twin = deletion[name[:-2]]
            out[name] = {sub: row[sub] < twin[sub] for sub in row}
    return out


def substrate_markdown(
    deletion: Mapping[str, Mapping[str, float]],
    beats_twin: Mapping[str, Mapping[str, bool]],
    removal: Mapping[str, Mapping[str, float]] | None = None,
    pairs: int | None = None,
) -> str:
    """Deletion AUC by substrate, the -G vs twin check and why the substrates differ.

    ``removal``: a removal-effectiveness table (:func:`run_removal_effectiveness`'s
    ``table``), whose grey and learned-inpainting recalls are then quoted. ``pairs``:
    the number of image-class pairs, stated when given.
    """
    substrates = list(next(iter(deletion.values())))
    evidence = " (`captum-ext removal-effectiveness` measures it)."
    if removal is not None:
        grey = removal["grey (mean colour)"]
        learned = next(row for name, row in removal.items() if name.startswith(LEARNED))
        evidence = (
            f": removing whole objects, the classifier still detects the class in "
            f"{100 * grey['recall']:.0f}% of the pairs after a grey fill and in "
            f"{100 * learned['recall']:.0f}% after learned inpainting (removal table)."
        )
    few = ""
    if pairs is not None:
        few = (
            f" Measured on {pairs} image-class pairs; differences under about 0.03 need "
            "hundreds of pairs (docs/inpainters.md has them)."
        )
    lines = [
        "## Deletion AUC by substrate (lower is better)",
        "",
        "The deletion metric replaces the most important pixels by a substrate; the same "
        "maps are scored on each. The paper's constant fill (the mean colour) cannot "
        "separate the methods here: the classes are shapes, and a constant fill keeps "
        f"the silhouette, so the class{evidence} The learned-inpainting substrate "
        "(deletion by realistic removal, Agarwal & Nguyen's argument) is the one the "
        "-G methods are judged on, blur second. A -G method picks the pixels whose "
        "inpainting removes the evidence and MP2 those whose blur does, so each "
        f"substrate favours one family.{few}",
        "",
        "| Method | " + " | ".join(substrates) + " |",
        "|---|" + "---:|" * len(substrates),
    ]
    for name, row in deletion.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[s]:.4f}" for s in substrates) + " |")
    lines += ["", "## Does each -G method have a lower deletion AUC than its twin?", ""]
    lines += ["| Pair | " + " | ".join(substrates) + " |", "|---|" + "---|" * len(substrates)]
    for name, row in beats_twin.items():
        cells = " | ".join("yes" if row[s] else "**no**" for s in substrates)
        lines.append(f"| {name} vs {name[:-2]} | {cells} |")
    return "\n".join(lines)


# --------------------------------------------------------------------- Sec. 4.4
def scaled_sizes(sizes: Sequence[int], image_size: int) -> list[int]:
    """Patch sizes given at 224 px scaled to ``image_size`` (at least 1 px).

    Examples
    --------
    >>> scaled_sizes((5, 17, 29, 41, 53), 64)
    [1, 5, 8, 12, 15]
    """
    return [scaled_size(s, image_size, image_size)[0] for s in sizes]


def _similarities(maps: Sequence[Tensor]) -> dict[str, Tensor]:
    """Per-image mean pairwise SSIM, HOG-Pearson and Spearman of ``k`` map batches."""
    maps = [m[:, 0].float() for m in maps]
    return {
        "ssim": mean_pairwise_similarity(maps, map_ssim),
        "hog_pearson": mean_pairwise_similarity(maps, hog_pearson),
        "spearman": mean_pairwise_similarity(maps, spearman),
    }


def run_sensitivity(
    output_dir: PathLike = "reports/sensitivity",
    num_images: int = 50,
    image_size: int = 64,
    patch_sizes: Sequence[int] = (5, 17, 29, 41, 53),
    lime_seeds: int = 5,
    lime_samples: int = 500,
    seed: int = 0,
    classifier: PathLike | None = None,
    batch_size: int = 10,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
) -> dict[str, dict[str, dict[str, float]]]:
    """Agarwal Sec. 4.4: how much maps change with SP's patch size and LIME's seed.

    For each held-out image (target: its first present class) SP and SP-G run with the
    paper's five patch sizes scaled to the image (the paper's grid map; stride 14 px at 224
    scaled, 4 px at 64 x 64, coarser than the paper's 3 px to keep it affordable), LIME and
    LIME-G with ``lime_seeds`` seeds of ``lime_samples`` samples (the paper: 5 seeds of
    500). Reported: mean over images of the mean pairwise SSIM,
    HOG-Pearson and Spearman similarity of the maps (higher = more robust), with the
    standard deviation over images. Writes ``sensitivity.{md,json}``.
    """
    model = _model(classifier, device)
    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    space = dataset.space
    learned = Inpaint(load_shapes_inpainter(device=device), space)
    sizes = scaled_sizes(patch_sizes, image_size)
    stride = max(1, round(14 * image_size / 224))
    variants = {
        "SP": SlidingPatch(model, filler=Constant(0.0), score=SCORE),
        "SP-G": SlidingPatch(model, filler=learned, score=SCORE),
        "LIME": SuperpixelLime(model, filler=Constant(0.0), score=SCORE, space=space),
        "LIME-G": SuperpixelLime(model, filler=learned, score=SCORE, space=space),
    }
    scores: dict[str, dict[str, list[Tensor]]] = {name: {} for name in variants}
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc="sensitivity", disable=not show_progress):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        x = torch.stack([s["image"] for s in samples]).to(device)
        target = torch.stack([s["labels"] for s in samples]).argmax(dim=1).to(device)
        for name, method in variants.items():
            if name.startswith("SP"):
                maps = [
                    method.attribute(
                        x,
                        target=target,
                        sliding_window_shapes=k,
                        strides=stride,
                        return_map=True,
                        perturbations_per_eval=64,
                    )
                    for k in sizes
                ]
            else:
                segments = method.superpixels(x)
                maps = [
                    method.attribute(
                        x,
                        target=target,
                        feature_mask=segments,
                        n_samples=lime_samples,
                        seed=s,
                        return_map=True,
                    )
                    for s in range(lime_seeds)
                ]
            for metric, value in _similarities(maps).items():
                scores[name].setdefault(metric, []).append(value.cpu())
    table = {
        name: {
            metric: {
                "mean": float(torch.cat(values).nanmean()),
                "std": float(_nanstd(torch.cat(values))),
            }
            for metric, values in metrics.items()
        }
        for name, metrics in scores.items()
    }
    lines = [
        "# Sensitivity to hyperparameters (Agarwal & Nguyen Sec. 4.4, shapes world)",
        "",
        f"{num_images} held-out images ({image_size} x {image_size}), target = first present "
        f"class. SP / SP-G: patch sizes {list(patch_sizes)} at 224 scaled to {sizes}, stride "
        f"{stride}; LIME / LIME-G: {lime_seeds} seeds x {lime_samples} samples on the same "
        "SLIC superpixels. Mean pairwise similarity of the maps of each image (higher = more "
        "robust), mean +- std over images. G = the shipped learned inpainter.",
        "",
        "| Method | SSIM ↑ | HOG-Pearson ↑ | Spearman ↑ |",
        "|---|---:|---:|---:|",
    ]
    for name, row in table.items():
        cells = " | ".join(
            f"{row[m]['mean']:.3f} ± {row[m]['std']:.3f}"
            for m in ("ssim", "hog_pearson", "spearman")
        )
        lines.append(f"| {name} | {cells} |")
    settings = {
        "num_images": num_images,
        "image_size": image_size,
        "patch_sizes_at_224": list(patch_sizes),
        "patch_sizes": sizes,
        "stride": stride,
        "lime_seeds": lime_seeds,
        "lime_samples": lime_samples,
    }
    write_markdown_json(
        output_dir, "sensitivity", "\n".join(lines), {"table": table, "settings": settings}
    )
    _sensitivity_figure(table, Path(output_dir) / "sensitivity.png")
    return table


def _sensitivity_figure(table: Mapping[str, Mapping[str, Mapping[str, float]]], path: Path) -> Path:
    """Bars of the mean similarity (+- std) per metric and method, as the paper's Fig. 6."""
    metrics = {"ssim": "SSIM", "hog_pearson": "HOG-Pearson", "spearman": "Spearman"}
    fig = Figure(figsize=(3.2 * len(metrics), 2.6))
    for i, (key, title) in enumerate(metrics.items()):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        names = list(table)
        means = [table[n][key]["mean"] for n in names]
        stds = [table[n][key]["std"] for n in names]
        ax.barh(names, means, xerr=stds, color=["#bbb" if "-G" not in n else "#47a" for n in names])
        ax.set_xlim(right=1.0)
        ax.axvline(0.0, color="k", linewidth=0.5)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _nanstd(values: Tensor) -> Tensor:
    finite = values[~values.isnan()]
    return finite.std() if finite.numel() > 1 else torch.tensor(math.nan)
