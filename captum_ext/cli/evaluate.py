"""``captum-ext evaluate``: the shapes-world evaluation of attribution methods."""

from __future__ import annotations

from captum_ext.cli.options import check_methods
from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def evaluate(
    num_images: int = 50,
    image_size: int = 64,
    methods: list[str] | None = None,
    output_dir: str = "reports/shapes-world",
    checkpoint: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    figure_rows: int = 6,
) -> None:
    """Evaluate attribution methods on held-out shapes-world images.

    Writes metrics.md (table: pointing game, IoU, soft accuracy, MAE, deletion and
    insertion AUC, saliency metric, seconds per pair), metrics.json and figure.png.

    Args:
        num_images: number of held-out (test split) images; every class present in an
            image is one image-class pair.
        image_size: image side (the shipped classifier was trained at 64).
        methods: method names to include (default: occlusion, gradcam,
            integrated_gradients, random).
        output_dir: report directory.
        checkpoint: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        seed: base seed of the shapes world.
        device: torch device, e.g. cpu or cuda.
        figure_rows: image-class pairs shown in the figure grid.
    """
    from captum_ext.evaluation.report import markdown_table
    from captum_ext.evaluation.shapes_world import evaluate_shapes_world

    result = evaluate_shapes_world(
        output_dir,
        num_images,
        image_size,
        check_methods(methods),
        checkpoint=checkpoint,
        seed=seed,
        device=device,
        figure_rows=figure_rows,
    )
    print(markdown_table(result))
    print(f"\nreport written to {output_dir}")


def main(argv: list[str]) -> None:
    """``captum-ext evaluate [--num_images 50] [--image_size 64] [--methods [...]] ...``."""
    CLI(evaluate, args=argv)
