"""Evaluation harness: run attribution methods on a dataset with ground truth, write reports."""

from captum_ext.evaluation.harness import EvaluationResult, FigureRows, evaluate_attributions
from captum_ext.evaluation.methods import (
    DEFAULT_METHODS,
    METHODS,
    MethodContext,
    MethodSpec,
    available_methods,
    default_methods,
)
from captum_ext.evaluation.report import (
    markdown_table,
    pointing_markdown,
    pointing_per_class,
    write_figure,
    write_report,
)
from captum_ext.evaluation.shapes_world import evaluate_shapes_world

__all__ = [
    "DEFAULT_METHODS",
    "EvaluationResult",
    "FigureRows",
    "METHODS",
    "MethodContext",
    "MethodSpec",
    "available_methods",
    "default_methods",
    "evaluate_attributions",
    "evaluate_shapes_world",
    "markdown_table",
    "pointing_markdown",
    "pointing_per_class",
    "write_figure",
    "write_report",
]
