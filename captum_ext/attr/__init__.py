"""Captum-compatible attribution methods (one per module, re-exported here)."""

from captum_ext.attr._base import MaskAttribution
from captum_ext.attr.dssr import DSSR
from captum_ext.attr.explainer import ExplainerAttribution
from captum_ext.attr.fgvis import FGVis
from captum_ext.attr.mp2 import MP2
from captum_ext.attr.random_baseline import RandomAttribution
from captum_ext.attr.sliding_patch import SlidingPatch
from captum_ext.attr.superpixel_lime import SuperpixelLime
from captum_ext.attr.upsampled_gradcam import UpsampledLayerGradCam, default_gradcam_layer

__all__ = [
    "DSSR",
    "ExplainerAttribution",
    "FGVis",
    "MP2",
    "MaskAttribution",
    "RandomAttribution",
    "SlidingPatch",
    "SuperpixelLime",
    "UpsampledLayerGradCam",
    "default_gradcam_layer",
]
