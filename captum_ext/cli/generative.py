"""``captum-ext`` sub-commands of the generative-removal experiments (Agarwal & Nguyen 2020)."""

from __future__ import annotations

from pathlib import Path

from captum_ext.cli.options import check_methods
from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def removal_effectiveness(
    output_dir: str = "reports/removal",
    num_images: int = 500,
    image_size: int = 64,
    seed: int = 0,
    classifier: str | None = None,
    inpainter: str | None = None,
    extra_inpainters: dict[str, str] | None = None,
    quality_images: int = 200,
    device: str = "cpu",
) -> None:
    """Agarwal Table 1: remove the ground-truth objects with each filler.

    Writes removal.md, removal.json and removal.png: the classifier's recall on the
    removed class and the similarity to the original for constant, blur, noise and
    inpainting (OpenCV Telea / Navier-Stokes, the learned inpainter).

    Args:
        output_dir: report directory.
        num_images: held-out shapes-world images.
        image_size: image side.
        seed: base seed of the shapes world.
        classifier: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        inpainter: learned-inpainter weights (default: the shipped one).
        extra_inpainters: more learned inpainters to compare, name -> weights file.
        quality_images: held-out backgrounds of the inpainting-quality table.
        device: torch device.
    """
    from captum_ext.evaluation.generative import run_removal_effectiveness

    run_removal_effectiveness(
        output_dir,
        num_images,
        image_size,
        seed,
        classifier,
        inpainter,
        extra_inpainters,
        quality_images=quality_images,
        device=device,
    )
    print((Path(output_dir) / "removal.md").read_text())


def evaluate_generative(
    output_dir: str = "reports/generative",
    num_images: int = 500,
    image_size: int = 64,
    methods: list[str] | None = None,
    lime_samples: int | None = None,
    seed: int = 0,
    classifier: str | None = None,
    inpainter: str | None = None,
    device: str = "cpu",
) -> None:
    """Agarwal Tables 2-3: SP, SP-G, LIME, LIME-G, MP2, MP2-G through the evaluation harness.

    Writes the harness report (metrics.md/json, figure.png) and deletion.md/json (deletion
    AUC on the constant, blur and learned-inpainting substrates, and the -G vs twin check).

    Args:
        output_dir: report directory.
        num_images: held-out shapes-world images (every present class is one pair).
        image_size: image side.
        methods: registry names (default: sp sp_g lime lime_g mp2 mp2_g).
        lime_samples: override LIME's 1,000 samples.
        seed: base seed of the shapes world.
        classifier: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        inpainter: learned-inpainter weights for the -G methods and the learned
            substrate (default: the shipped one, trained at 64 x 64).
        device: torch device.
    """
    from captum_ext.evaluation.generative import run_generative_evaluation
    from captum_ext.evaluation.methods import GENERATIVE_METHODS

    run_generative_evaluation(
        output_dir,
        num_images,
        image_size,
        check_methods(methods) or GENERATIVE_METHODS,
        lime_samples,
        seed,
        classifier,
        device,
        inpainter=inpainter,
    )
    print((Path(output_dir) / "deletion.md").read_text())


def sensitivity(
    output_dir: str = "reports/sensitivity",
    num_images: int = 50,
    image_size: int = 64,
    lime_seeds: int = 5,
    lime_samples: int = 500,
    seed: int = 0,
    classifier: str | None = None,
    device: str = "cpu",
) -> None:
    """Agarwal Sec. 4.4: SSIM / HOG-Pearson / Spearman across SP patch sizes and LIME seeds.

    Args:
        output_dir: report directory.
        num_images: held-out shapes-world images.
        image_size: image side.
        lime_seeds: LIME seeds compared.
        lime_samples: samples per LIME run (the paper: 500).
        seed: base seed of the shapes world.
        classifier: classifier weights file, or a shipped classifier's name
            (default: shapes_classifier).
        device: torch device.
    """
    from captum_ext.evaluation.generative import run_sensitivity

    run_sensitivity(
        output_dir,
        num_images,
        image_size,
        lime_seeds=lime_seeds,
        lime_samples=lime_samples,
        seed=seed,
        classifier=classifier,
        device=device,
    )
    print((Path(output_dir) / "sensitivity.md").read_text())


def removal_main(argv: list[str]) -> None:
    """``captum-ext removal-effectiveness [--num_images 500] [...]``."""
    CLI(removal_effectiveness, args=argv)


def evaluate_generative_main(argv: list[str]) -> None:
    """``captum-ext evaluate-generative [--num_images 500] [--lime_samples N] [...]``."""
    CLI(evaluate_generative, args=argv)


def sensitivity_main(argv: list[str]) -> None:
    """``captum-ext sensitivity [--num_images 50] [...]``."""
    CLI(sensitivity, args=argv)
