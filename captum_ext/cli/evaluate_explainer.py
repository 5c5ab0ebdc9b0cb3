"""``captum-ext evaluate-explainer``: the shapes-world evaluation of the learned Explainer."""

from __future__ import annotations

from captum_ext.cli.options import check_methods
from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def evaluate_explainer(
    num_images: int = 500,
    table1_images: int | None = 100,
    image_size: int = 64,
    methods: list[str] | None = None,
    output_dir: str = "reports/shapes-explainer",
    seed: int = 0,
    device: str = "cpu",
    checkpoint_dir: str | None = None,
) -> None:
    """Evaluate the shipped Explainer against its baselines on held-out shapes-world images.

    Writes metrics.md/json and figure.png (per image-class pair: pointing, IoU, soft
    accuracy, MAE, deletion/insertion AUC, saliency metric) and tables.md/json (Stalder
    et al. Table 1, class-specific masking, and Table 2, segmentation of the aggregated
    masks with the 0 / 0.5 / 1 / G.T. rows) and class_masks.png (each method's map of
    each class of an image with two objects).

    Args:
        num_images: held-out test images (every present class is one image-class pair).
        table1_images: images of Table 1 (every class's map of every image is computed).
        image_size: image side (the shipped networks were trained at 64).
        methods: registry names (default: explainer, rtis, gradcam, occlusion).
        output_dir: report directory.
        seed: base seed of the shapes world.
        device: torch device, e.g. cpu or cuda.
        checkpoint_dir: directory whose shapes_explainer.pt, shapes_explainer_rtis.pt or
            shapes_classifier.pt replace the shipped ones (e.g. a retrained Explainer).
    """
    from captum_ext.evaluation.explainer_tables import (
        evaluate_explainer_shapes_world,
        tables_markdown,
    )
    from captum_ext.evaluation.report import markdown_table

    result, tables = evaluate_explainer_shapes_world(
        output_dir,
        num_images,
        table1_images,
        image_size,
        check_methods(methods),
        seed,
        device,
        checkpoint_dir=checkpoint_dir,
    )
    print(markdown_table(result))
    print()
    print(tables_markdown(tables))
    print(f"\nreport written to {output_dir}")


def main(argv: list[str]) -> None:
    """``captum-ext evaluate-explainer [--num_images 500] [--table1_images 100] ...``."""
    CLI(evaluate_explainer, args=argv)
