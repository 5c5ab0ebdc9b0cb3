"""Metrics of attribution maps: batched torch tensors in and out, on any device."""

from captum_ext.metrics.entropy import max_entropy, reference_entropy
from captum_ext.metrics.localization import (
    POINTING_TOLERANCE,
    PointingScores,
    box_iou_pairs,
    choose_alpha,
    localization_error,
    pointing_accuracy,
    pointing_game,
    scaled_tolerance,
    threshold_boxes,
)
from captum_ext.metrics.maps import attribution_map, normalize_map
from captum_ext.metrics.masking_matrix import DEFAULT_THRESHOLDS, class_masking_matrix
from captum_ext.metrics.perturbation_curves import (
    DEFAULT_STEPS,
    Curve,
    curve_auc,
    deletion_auc,
    deletion_curve,
    insertion_auc,
    insertion_curve,
)
from captum_ext.metrics.saliency import (
    MIN_AREA,
    crop_and_resize,
    log_probabilities,
    mask_saliency,
    saliency_metric,
)
from captum_ext.metrics.segmentation import (
    continuous_iou,
    mean_absolute_error,
    sanity_masks,
    sanity_rows,
    segmentation_scores,
    soft_accuracy,
)
from captum_ext.metrics.similarity import (
    hog_features,
    hog_pearson,
    map_ssim,
    mean_pairwise_similarity,
    spearman,
)

__all__ = [
    "Curve",
    "DEFAULT_STEPS",
    "DEFAULT_THRESHOLDS",
    "MIN_AREA",
    "POINTING_TOLERANCE",
    "PointingAccuracy",
    "PointingScores",
    "attribution_map",
    "box_iou_pairs",
    "choose_alpha",
    "class_masking_matrix",
    "continuous_iou",
    "crop_and_resize",
    "curve_auc",
    "deletion_auc",
    "deletion_curve",
    "hog_features",
    "hog_pearson",
    "insertion_auc",
    "insertion_curve",
    "localization_error",
    "log_probabilities",
    "map_ssim",
    "mask_saliency",
    "max_entropy",
    "mean_absolute_error",
    "mean_pairwise_similarity",
    "normalize_map",
    "pointing_accuracy",
    "pointing_game",
    "reference_entropy",
    "saliency_metric",
    "sanity_masks",
    "sanity_rows",
    "scaled_tolerance",
    "segmentation_scores",
    "soft_accuracy",
    "spearman",
    "threshold_boxes",
]


def __getattr__(name: str) -> object:
    # PointingAccuracy is a torchmetrics Metric (the lightning extra): imported on first
    # use so that the rest of the metrics need torch only.
    if name == "PointingAccuracy":
        from captum_ext.metrics.streaming import PointingAccuracy

        return PointingAccuracy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
