"""Helpers for code built on captum-ext: the Lightning callbacks, the evaluation harness, your
own methods and reports.

These are the public names of the package's shared helpers (their code lives in
``captum_ext._utils``): argument checks that raise clear ``TypeError`` / ``ValueError``,
the model-state guard every method runs under, score handling, report files, the
scaling of pixel-valued defaults from 224 x 224 to an image's size, and :func:`require`
for optional dependencies.

Examples
--------
>>> import torch
>>> check_positive_int(3, "steps")
3
>>> to_scores(torch.zeros(1, 2), "softmax")
tensor([[0.5000, 0.5000]])
"""

from captum_ext._utils.image_scale import scaled_length, scaled_pixel_weight, scaled_size
from captum_ext._utils.model_state import modules_of, preserved_state
from captum_ext._utils.optional import require
from captum_ext._utils.report_files import to_json, write_markdown_json
from captum_ext._utils.scores import as_logits, check_score, to_scores
from captum_ext._utils.validation import (
    TargetLike,
    check_choice,
    check_inputs,
    check_positive_int,
    format_target,
)

__all__ = [
    "TargetLike",
    "as_logits",
    "check_choice",
    "check_inputs",
    "check_positive_int",
    "check_score",
    "format_target",
    "modules_of",
    "preserved_state",
    "require",
    "scaled_length",
    "scaled_pixel_weight",
    "scaled_size",
    "to_json",
    "to_scores",
    "write_markdown_json",
]
