"""Implementations of the ``captum-ext`` sub-commands."""

from __future__ import annotations

import json

from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def train_classifier(argv: list[str]) -> None:
    """``captum-ext train-classifier [--preset shapes_classifier] [LightningCLI options]``."""
    from captum_ext.training.presets import fit

    fit("classifier", argv)


def train_explainer(argv: list[str]) -> None:
    """``captum-ext train-explainer --preset NAME [LightningCLI options]``.

    Trains a learned Explainer (Stalder et al. 2022) against a frozen classifier; the data
    module is chosen in the config (``data.class_path``: shapes world, VOC-2007, COCO-2014).
    """
    from captum_ext.training.presets import fit

    fit("explainer", argv)


def train_inpainter(argv: list[str]) -> None:
    """``captum-ext train-inpainter [--preset shapes_inpainter] [--data.image_dir DIR] [...]``."""
    from captum_ext.training.presets import fit

    fit("inpainter", argv)


def _check_classifier(
    checkpoint: str | None = None,
    num_images: int = 1000,
    image_size: int = 64,
    seed: int = 0,
    output: str | None = None,
) -> dict:
    """Measure the shapes-world classifier's masking robustness on held-out images.

    Prints clean and object-only exact-match (the shipped classifier's goals: >= 0.90
    and >= 0.85), the object-removed exact-match per filler (reported, not gated) and
    the largest mean class probability on each removal reference (goal: <= 0.05, a
    reference carries no class evidence).

    Args:
        checkpoint: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        num_images: number of held-out (test split) images.
        image_size: image side.
        seed: base seed of the shapes world.
        output: optional JSON file for the numbers.
    """
    from captum_ext.data.shapes import ShapesDataset
    from captum_ext.evaluation.classifier_robustness import masking_robustness, reference_evidence
    from captum_ext.models.pretrained import load_shapes_classifier

    model = load_shapes_classifier(checkpoint)
    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    results = masking_robustness(model, dataset)
    evidence = reference_evidence(model, dataset, dataset.space, seed=seed)
    results.update({f"reference/{name}": value for name, value in evidence.items()})
    for name, value in results.items():
        print(f"{name:>24}: {value:.3f}")
    if output:
        with open(output, "w") as f:
            json.dump(results, f, indent=2)
    return results


def check_classifier(argv: list[str]) -> None:
    """``captum-ext check-classifier [--checkpoint PATH] [--num_images 1000]``."""
    CLI(_check_classifier, args=argv)
