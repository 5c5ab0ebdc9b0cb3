"""Captum-compatible attribution methods (one per module, re-exported here)."""

from captum_ext.attr._base import MaskAttribution
from captum_ext.attr.explainer import ExplainerAttribution
from captum_ext.attr.random_baseline import RandomAttribution

__all__ = ["ExplainerAttribution", "MaskAttribution", "RandomAttribution"]
