"""``captum-ext demo``: the shapes-world report of every method (the README's first command)."""

from __future__ import annotations

from captum_ext.cli.options import check_methods
from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def demo(
    output_dir: str = "demo-report",
    full: bool = False,
    retrain: bool = False,
    methods: list[str] | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> None:
    """Run every shapes-world experiment with the shipped checkpoints and write a report.

    Writes report.html (open it in a browser), report.md and report.json, with the
    comparison grid (image, ground truth, one column per method), the metric table
    and deletion / insertion curves, the throughput table, the Stalder Tables 1-2
    analogues, the removal-effectiveness table and the hallucination table. The quick
    default takes a few minutes on 2 CPU cores.

    Args:
        output_dir: report directory.
        full: paper-scale settings (500-image tables, paper defaults of every method;
            hours on CPU).
        retrain: retrain every shipped checkpoint (classifier, inpainter, Explainer,
            RTIS) from scratch first, into output_dir/checkpoints, and use those.
        methods: registry names of the methods to compare (default: all of them).
        device: torch device, e.g. cpu or cuda.
        seed: base seed of the shapes world.
    """
    from captum_ext.evaluation.demo import DEMO_METHODS, run_demo

    methods = tuple(check_methods(methods) or DEMO_METHODS)
    paths = run_demo(
        output_dir, full=full, retrain=retrain, methods=methods, device=device, seed=seed
    )
    print(
        f"report written to {paths['html']} (also {paths['markdown'].name}, {paths['json'].name})"
    )


def main(argv: list[str]) -> None:
    """``captum-ext demo [--output_dir demo-report] [--full] [--retrain] [--device cuda]``."""
    CLI(demo, args=argv)
