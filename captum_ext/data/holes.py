"""Random hole masks for self-supervised inpainting: boxes, superpixel unions, strokes, blobs.

The hole kinds mirror the holes the generative-removal methods ask an inpainter to
fill: square patches (SP-G), unions of superpixels (LIME-G), object-like blobs and
irregular free-form regions (MP2-G, object removal). Sizes are fractions of the image
side, so the same sampler works at any resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.segmentation import slic

from captum_ext._utils.optional import require

cv2 = require("cv2", extra="inpaint")

HOLE_KINDS: tuple[str, ...] = ("box", "superpixels", "strokes", "blob")


def _box(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    bh = max(1, int(round(h * rng.uniform(0.08, 0.55))))
    bw = max(1, int(round(w * rng.uniform(0.08, 0.55))))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    hole = np.zeros(shape, dtype=bool)
    hole[y : y + bh, x : x + bw] = True
    return hole


def _superpixels(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    segments = slic(
        image,
        n_segments=int(rng.integers(20, 120)),
        compactness=float(rng.uniform(10, 40)),
        sigma=float(rng.uniform(0.5, 3)),
        start_label=0,
        channel_axis=-1,
    )
    count = int(segments.max()) + 1
    chosen = rng.random(count) < rng.uniform(0.1, 0.6)
    if not chosen.any():
        chosen[rng.integers(count)] = True
    return chosen[segments]


def _strokes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    side = min(h, w)
    canvas = np.zeros(shape, dtype=np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        thickness = max(1, int(round(side * rng.uniform(0.03, 0.15))))
        point = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(2, 7))):
            angle += rng.uniform(-1.2, 1.2)
            step = side * rng.uniform(0.1, 0.35)
            end = np.clip(
                point + step * np.array([np.cos(angle), np.sin(angle)]), 0, [w - 1, h - 1]
            )
            cv2.line(canvas, tuple(int(v) for v in point), tuple(int(v) for v in end), 1, thickness)
            point = end
    return canvas > 0


def _blob(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A star-shaped random polygon, the size of an object."""
    h, w = shape
    side = min(h, w)
    radius = side * rng.uniform(0.1, 0.3)
    cx, cy = rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)
    count = int(rng.integers(3, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = radius * rng.uniform(0.5, 1.2, count)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    canvas = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas > 0


def random_holes(
    image: np.ndarray,
    rng: np.random.Generator,
    kinds: Sequence[str] = HOLE_KINDS,
    max_fraction: float = 0.7,
) -> np.ndarray:
    """Draw one random hole mask for an ``(H, W, 3)`` image in [0, 1].

    One kind is drawn uniformly from ``kinds``; with probability 0.3 a second hole of
    another drawn kind is added. Masks covering more than ``max_fraction`` of the image
    are redrawn (at most a few times, then cut back to a box).

    Parameters
    ----------
    image : ndarray
        ``(H, W, 3)`` float image in [0, 1] (superpixel holes follow its content).
    rng : numpy.random.Generator
        Random source.
    kinds : sequence of str
        Any of :data:`HOLE_KINDS`.
    max_fraction : float
        Largest fraction of the image a mask may cover.

    Returns
    -------
    ndarray
        ``(H, W)`` bool, True = hole (never empty).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> hole = random_holes(np.random.default_rng(1).random((32, 32, 3)), rng)
    >>> hole.shape, hole.dtype, bool(hole.any())
    ((32, 32), dtype('bool'), True)
    """
    unknown = [k for k in kinds if k not in HOLE_KINDS]
    if unknown or not kinds:
        raise ValueError(f"`kinds` must be a non-empty subset of {HOLE_KINDS}, got {list(kinds)}")
    shape = image.shape[:2]
    draw = {
        "box": lambda: _box(shape, rng),
        "superpixels": lambda: _superpixels(image, rng),
        "strokes": lambda: _strokes(shape, rng),
        "blob": lambda: _blob(shape, rng),
    }
    for _ in range(4):
        hole = draw[kinds[int(rng.integers(len(kinds)))]]()
        if rng.random() < 0.3:
            hole |= draw[kinds[int(rng.integers(len(kinds)))]]()
        if hole.any() and hole.mean() <= max_fraction:
            return hole
    return _box(shape, rng)
