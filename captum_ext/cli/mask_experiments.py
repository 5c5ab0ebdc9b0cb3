"""``captum-ext`` sub-commands of the FGVis / DSSR experiments (Markdown + JSON outputs)."""

from __future__ import annotations

from typing import Any

from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def _write(output_dir: str, name: str, markdown: str, payload: Any) -> None:
    from captum_ext.utils import write_markdown_json

    paths = write_markdown_json(output_dir, name, markdown, payload)
    print(markdown)
    print(f"written to {paths['markdown']} and {paths['json'].name}")


def _model(checkpoint: str | None, device: str):
    from captum_ext.models.pretrained import load_shapes_classifier

    return load_shapes_classifier(checkpoint, device=device)


def _hallucination(
    output_dir: str = "runs/hallucination",
    checkpoint: str | None = None,
    image_size: int = 64,
    iterations: int = 500,
    batch_size: int = 64,
    paper_setting_only: bool = False,
    device: str = "cpu",
) -> dict:
    """FGVis Table A1 on the shapes-world classifier (generation game, lambda = 0).

    Args:
        output_dir: where hallucination.md / .json are written.
        checkpoint: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        image_size: side of the constant images.
        iterations: SGD iterations (paper: 500).
        batch_size: triples optimised together.
        paper_setting_only: only the black image with the mid-grey reference.
        device: torch device.
    """
    from captum_ext.data.shapes import shapes_space
    from captum_ext.evaluation.hallucination import (
        DEFAULT_REFERENCES,
        DEFAULT_STARTS,
        hallucination_markdown,
        hallucination_rates,
    )

    starts = {"black": DEFAULT_STARTS["black"]} if paper_setting_only else None
    references = {"mid-grey": DEFAULT_REFERENCES["mid-grey"]} if paper_setting_only else None
    result = hallucination_rates(
        _model(checkpoint, device),
        shapes_space(),
        image_size,
        starts,
        references,
        iterations=iterations,
        batch_size=batch_size,
    )
    result["settings"] = {
        "image_size": image_size,
        "iterations": iterations,
        "checkpoint": checkpoint or "shipped",
    }
    _write(output_dir, "hallucination", hallucination_markdown(result), result)
    return result


def hallucination(argv: list[str]) -> None:
    """``captum-ext hallucination [--output_dir DIR] [--iterations 500]``."""
    CLI(_hallucination, args=argv)


def _reference_entropy(
    output_dir: str = "runs/reference_entropy",
    checkpoint: str | None = None,
    num_images: int = 1000,
    image_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """FGVis Table A2 (softmax entropy of reference images) on the shapes-world classifier.

    Args:
        output_dir: where reference_entropy.md / .json are written.
        checkpoint: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        num_images: test images (one reference instance each).
        image_size: image side.
        seed: seed of the data and of the random references.
        device: torch device.
    """
    from captum_ext.data.shapes import ShapesDataset, shapes_space
    from captum_ext.evaluation.reference_entropy import (
        entropy_markdown,
        reference_entropies,
        table_a2_fillers,
    )

    dataset = ShapesDataset(num_images, image_size, seed=seed, split="test")
    result = reference_entropies(
        _model(checkpoint, device), dataset, table_a2_fillers(shapes_space()), seed=seed
    )
    _write(output_dir, "reference_entropy", entropy_markdown(result, "shapes classifier"), result)
    return result


def reference_entropy(argv: list[str]) -> None:
    """``captum-ext reference-entropy [--output_dir DIR] [--num_images 1000]``."""
    CLI(_reference_entropy, args=argv)


__all__ = ["hallucination", "reference_entropy"]
