"""Reference images ("fillers") for the removal operator ``m * x + (1 - m) * r``."""

from captum_ext.fillers.base import Filler, remove
from captum_ext.fillers.blur import Blur, blur
from captum_ext.fillers.constant import Constant
from captum_ext.fillers.image_space import IMAGENET_MEAN, IMAGENET_STD, ImageSpace
from captum_ext.fillers.inpaint import Inpaint, Inpainter
from captum_ext.fillers.noise import GaussianNoise, UniformNoise

__all__ = [
    "Blur",
    "Constant",
    "Filler",
    "GaussianNoise",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageSpace",
    "Inpaint",
    "Inpainter",
    "UniformNoise",
    "blur",
    "remove",
]
