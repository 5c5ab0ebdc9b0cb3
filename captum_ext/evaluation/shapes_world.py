"""The shapes-world evaluation: held-out test images, the shipped classifier, the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from captum_ext.data.shapes import ShapesDataset
from captum_ext.evaluation.harness import EvaluationResult, evaluate_attributions
from captum_ext.evaluation.methods import default_methods
from captum_ext.evaluation.report import write_report

#: The shapes-world classifier is multi-label: its scores are sigmoids.
SHAPES_SCORE = "sigmoid"


def evaluate_shapes_world(
    output_dir: str | Path = "reports/shapes-world",
    num_images: int = 50,
    image_size: int = 64,
    methods: Sequence[str] | None = None,
    model: nn.Module | None = None,
    checkpoint: str | Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    figure_rows: int = 6,
    show_progress: bool = True,
) -> EvaluationResult:
    """Evaluate attribution methods on held-out shapes-world images and write the report.

    Every image of ``ShapesDataset(num_images, image_size, split="test", seed=seed)`` is
    evaluated for every class it contains, with ``score="sigmoid"`` (the classifier is
    multi-label); the report (``metrics.md``, ``metrics.json``, ``figure.png``) goes to
    ``output_dir``.

    Parameters
    ----------
    output_dir : path
        Report directory (created).
    num_images : int
        Number of test images.
    image_size : int
        Image side (the shipped classifier was trained at 64).
    methods : sequence of str, optional
        Names from :data:`~captum_ext.evaluation.methods.METHODS` (default the Captum
        baselines and the random map).
    model : nn.Module, optional
        The classifier; default the shipped one
        (:func:`~captum_ext.models.pretrained.load_shapes_classifier`).
    checkpoint : path, optional
        A weights file, or a shipped classifier's name (see
        :func:`~captum_ext.models.pretrained.load_shapes_classifier`).
    seed : int
        Base seed of the shapes world.
    device : str or torch.device
        Where the classifier and the data go.
    figure_rows : int
        Image-class pairs in the figure grid.
    show_progress : bool
        Show progress bars.

    Returns
    -------
    EvaluationResult
    """
    if model is None:
        from captum_ext.models.pretrained import load_shapes_classifier

        model = load_shapes_classifier(checkpoint, device=device)
    else:
        model = model.to(device)
    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    specs = default_methods(image_size, score=SHAPES_SCORE, space=dataset.space, include=methods)
    result = evaluate_attributions(
        model,
        dataset,
        specs,
        score=SHAPES_SCORE,
        figure_rows=figure_rows,
        show_progress=show_progress,
    )
    result.settings["dataset"] = (
        f"ShapesDataset(num_images={num_images}, image_size={image_size}, seed={seed}, "
        "split='test')"
    )
    write_report(result, output_dir)
    return result
