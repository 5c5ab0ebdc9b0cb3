"""Inpainters for the generative ("-G") methods (plug into ``fillers.Inpaint``).

``inpainter(images, holes) -> images``: ``(N, 3, H, W)`` pixels in [0, 1], ``(N, 1, H,
W)`` bool holes (True = fill); pixels outside the holes come back unchanged.
"""

from captum_ext.inpainters.learned import LearnedInpainter
from captum_ext.inpainters.opencv import OpenCVInpainter
from captum_ext.inpainters.torchscript import TorchScriptInpainter

__all__ = ["LearnedInpainter", "OpenCVInpainter", "TorchScriptInpainter"]
