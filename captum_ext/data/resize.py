"""Paper preprocessing shared by VOC and COCO: resize to a square, ImageNet normalisation.

Images are resized (not cropped) to ``size x size`` as Stalder et al. do; label maps are
resized with nearest-neighbour interpolation and boxes scaled by the same factors, so
images, masks and boxes stay aligned.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from captum_ext.fillers.image_space import ImageSpace


def image_to_inputs(image: Image.Image, size: int, space: ImageSpace) -> Tensor:
    """A PIL image as a ``(3, size, size)`` float tensor in ``space``'s input space.

    Examples
    --------
    >>> img = Image.new("RGB", (40, 30), (255, 0, 0))
    >>> x = image_to_inputs(img, 16, ImageSpace())
    >>> x.shape, x[0].mean().item(), x[1].mean().item()
    (torch.Size([3, 16, 16]), 1.0, 0.0)
    """
    pixels = TF.to_dtype(TF.pil_to_tensor(image.convert("RGB")), torch.float32, scale=True)
    pixels = TF.resize(pixels, [size, size], antialias=True).clamp(0, 1)
    return space.to_inputs(pixels.unsqueeze(0))[0]


def resize_label_map(labels: np.ndarray, size: int) -> Tensor:
    """Nearest-neighbour resize of an ``(H, W)`` integer label map to ``(size, size)``."""
    tensor = torch.as_tensor(np.ascontiguousarray(labels)).unsqueeze(0)
    return TF.resize(tensor, [size, size], interpolation=InterpolationMode.NEAREST_EXACT)[0]


def scale_boxes(boxes: Tensor, original: tuple[int, int], size: int) -> Tensor:
    """Scale ``(M, 4)`` ``(x0, y0, x1, y1)`` pixel boxes of an image of ``original = (W, H)``.

    Examples
    --------
    >>> scale_boxes(torch.tensor([[0.0, 0.0, 50.0, 20.0]]), (100, 40), 10)
    tensor([[0., 0., 5., 5.]])
    """
    width, height = original
    factors = torch.tensor([size / width, size / height] * 2, dtype=boxes.dtype)
    return boxes * factors
