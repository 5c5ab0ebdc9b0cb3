"""Pixel-valued defaults of the papers, scaled from 224 x 224 to the image at hand.

The papers set their window sizes, strides, grids, blur widths and L1 weights for
ImageNet-sized inputs (224 x 224). A default measured in pixels keeps its meaning on
another image size only if it scales with the image: a 29-pixel window covers an eighth
of a 224-pixel side but almost half of a 64-pixel one. Lengths scale with the side,
weights of sums over pixels with the inverse of the pixel count. At 224 x 224 every
scaled default is the paper's value.
"""

from __future__ import annotations

import math

#: The image side the papers' pixel-valued defaults were set for.
PAPER_SIDE = 224


def scaled_size(paper_size: float, height: int, width: int) -> tuple[int, int]:
    """A length of ``paper_size`` pixels at 224 x 224, per side, rounded and >= 1.

    Examples
    --------
    >>> scaled_size(16, 224, 224), scaled_size(16, 64, 64), scaled_size(12, 64, 32)
    ((16, 16), (5, 5), (3, 2))
    """
    return (
        max(1, round(paper_size * height / PAPER_SIDE)),
        max(1, round(paper_size * width / PAPER_SIDE)),
    )


def scaled_length(paper_length: float, height: int, width: int) -> float:
    """A length of ``paper_length`` pixels at 224 x 224, scaled with the geometric-mean side.

    Examples
    --------
    >>> scaled_length(10.0, 224, 224), scaled_length(10.0, 112, 112)
    (10.0, 5.0)
    """
    return paper_length * math.sqrt(height * width) / PAPER_SIDE


def scaled_pixel_weight(paper_weight: float, height: int, width: int) -> float:
    """A weight of a sum over pixels, set at 224 x 224, for ``height x width`` images.

    The sum grows with the pixel count, so the weight scales with ``224^2 / (H W)``;
    the term then weighs as much against the classifier's score at every size.

    Examples
    --------
    >>> scaled_pixel_weight(1e-7, 224, 224), round(scaled_pixel_weight(1e-7, 112, 112), 12)
    (1e-07, 4e-07)
    """
    return paper_weight * PAPER_SIDE * PAPER_SIDE / (height * width)
