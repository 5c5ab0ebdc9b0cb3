"""Vectorised generator of the shapes world: textured scenes with pixel-exact ground truth.

Every image holds 1-3 objects drawn from K shape classes, with a random colour, size,
position and a small rotation, on a textured background; later objects may occlude
earlier ones, but every object keeps at least half of its pixels visible. Generation is
vectorised over whole chunks of images (no per-image Python loop) and deterministic in
its seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._utils.validation import check_positive_int

#: Shape names in class order; a world with K classes uses the first K.
SHAPE_NAMES: tuple[str, ...] = (
    "disc",
    "square",
    "triangle",
    "cross",
    "ring",
    "diamond",
    "star",
    "tee",
)

_SQRT3 = math.sqrt(3.0)


def _polar(u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    return torch.sqrt(u * u + v * v), torch.atan2(v, u)


#: Inside-tests in object coordinates (u, v), where the object's radius is 1.
_SHAPE_TESTS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "disc": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: torch.maximum(u.abs(), v.abs()) <= 0.82,
    "triangle": lambda u, v: (v <= 0.55) & (_SQRT3 * u.abs() <= v + 1.05),
    "cross": lambda u, v: (
        ((u.abs() <= 0.32) & (v.abs() <= 1.0)) | ((v.abs() <= 0.32) & (u.abs() <= 1.0))
    ),
    "ring": lambda u, v: ((u * u + v * v) <= 1.0) & ((u * u + v * v) >= 0.36),
    "diamond": lambda u, v: u.abs() + v.abs() <= 1.1,
    "star": lambda u, v: _polar(u, v)[0] <= 0.55 + 0.45 * torch.cos(5 * _polar(u, v)[1]),
    "tee": lambda u, v: (
        ((u.abs() <= 0.95) & (v >= -0.95) & (v <= -0.45)) | ((u.abs() <= 0.28) & (v.abs() <= 0.95))
    ),
}


@dataclass
class ShapesBatch:
    """Raw output of :func:`generate_shapes`.

    Attributes
    ----------
    images : Tensor
        ``(N, 3, S, S)`` uint8 RGB images.
    instances : Tensor
        ``(N, S, S)`` uint8 map: 0 = background, ``j + 1`` = visible pixel of object j.
    object_classes : Tensor
        ``(N, M)`` int64 class of each object slot, -1 for unused slots.
    """

    images: Tensor
    instances: Tensor
    object_classes: Tensor

    @property
    def num_objects(self) -> int:
        return self.object_classes.shape[1]

    def class_masks(self, num_classes: int) -> Tensor:
        """``(N, K, S, S)`` bool per-class ground-truth masks of the visible pixels."""
        n, s = self.instances.shape[0], self.instances.shape[-1]
        masks = torch.zeros(n, num_classes, s, s, dtype=torch.bool)
        for j in range(self.num_objects):
            cls = self.object_classes[:, j]
            visible = self.instances == (j + 1)
            valid = cls >= 0
            masks[valid, cls[valid]] |= visible[valid]
        return masks

    def labels(self, num_classes: int) -> Tensor:
        """``(N, K)`` float multi-hot labels (a class is present if it has visible pixels)."""
        return self.class_masks(num_classes).flatten(2).any(dim=2).float()

    def boxes(self) -> tuple[Tensor, Tensor]:
        """Per-object boxes of the visible pixels.

        Returns
        -------
        boxes : Tensor
            ``(N, M, 4)`` float ``(x0, y0, x1, y1)`` in pixels, inclusive-exclusive
            (``x1 = last column + 1``); zeros for unused slots.
        box_labels : Tensor
            ``(N, M)`` int64 class per box, -1 for unused slots.
        """
        m, s = self.num_objects, self.instances.shape[-1]
        ids = torch.arange(1, m + 1).view(1, m, 1, 1)
        visible = self.instances.unsqueeze(1) == ids  # (N, M, S, S)
        cols, rows = visible.any(dim=2), visible.any(dim=3)  # (N, M, S)
        coord = torch.arange(s).view(1, 1, s)
        big = s + 1
        x0 = torch.where(cols, coord, big).amin(dim=2)
        x1 = torch.where(cols, coord, -1).amax(dim=2) + 1
        y0 = torch.where(rows, coord, big).amin(dim=2)
        y1 = torch.where(rows, coord, -1).amax(dim=2) + 1
        present = cols.any(dim=2)
        boxes = torch.stack([x0, y0, x1, y1], dim=2).float() * present.unsqueeze(2)
        labels = torch.where(present, self.object_classes, -1)
        return boxes, labels


def _smooth_noise(n: int, size: int, cells: Tensor, generator: torch.Generator) -> Tensor:
    """Low-frequency noise in [0, 1]: a random coarse grid, bicubically upsampled."""
    out = torch.empty(n, 1, size, size)
    for c in cells.unique().tolist():  # a handful of grid resolutions, not images
        idx = (cells == c).nonzero().flatten()
        grid = torch.rand(idx.numel(), 1, c, c, generator=generator)
        out[idx] = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    return out.clamp(0, 1)


def _backgrounds(n: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Textured backgrounds ``(n, 3, S, S)`` in [0, 1] and their two base colours."""
    colours = torch.rand(n, 2, 3, generator=generator)
    cells = torch.randint(3, 9, (n,), generator=generator)
    noise = _smooth_noise(n, size, cells, generator)
    coords = torch.linspace(0, 1, size)
    angle = torch.rand(n, 1, 1, generator=generator) * math.pi
    freq = 2 + 6 * torch.rand(n, 1, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=generator)
    # The stripe phase is separable in x and y: two (n, S) ramps, one full-size add.
    wave = 2 * math.pi * freq
    ramp_x = (wave * torch.cos(angle)) * coords.view(1, 1, size) + phase
    ramp_y = (wave * torch.sin(angle)) * coords.view(1, size, 1)
    stripes = 0.5 + 0.5 * torch.sin(ramp_x + ramp_y)
    mix = torch.rand(n, 1, 1, generator=generator)
    t = (mix * noise[:, 0] + (1 - mix) * stripes).unsqueeze(1)  # (n, 1, S, S)
    low, high = colours[:, 0, :, None, None], colours[:, 1, :, None, None]
    background = low + (high - low) * t
    return background, colours


def _object_colours(n: int, avoid: Tensor, generator: torch.Generator) -> Tensor:
    """One colour per object, the most distant of 8 candidates from the background colours."""
    candidates = torch.rand(n, 8, 3, generator=generator)
    dist = torch.cdist(candidates, avoid).amin(dim=2)  # (n, 8)
    best = dist.argmax(dim=1)
    return candidates[torch.arange(n), best]


def _render_chunk(
    n: int, size: int, num_classes: int, max_objects: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Render ``n`` scenes; returns float images, instance maps, classes, visibility ok."""
    m = max_objects
    count = torch.randint(1, m + 1, (n,), generator=generator)
    used = torch.arange(m).view(1, m) < count.view(n, 1)
    classes = torch.randint(0, num_classes, (n, m), generator=generator)
    classes = torch.where(used, classes, -1)
    radius = size * (0.13 + 0.09 * torch.rand(n, m, generator=generator))
    cx = radius + (size - 1 - 2 * radius) * torch.rand(n, m, generator=generator)
    cy = radius + (size - 1 - 2 * radius) * torch.rand(n, m, generator=generator)
    theta = (torch.rand(n, m, generator=generator) - 0.5) * (math.pi / 9)  # +-10 degrees

    coords = torch.arange(size, dtype=torch.float32)
    cos, sin = torch.cos(theta).flatten(), torch.sin(theta).flatten()
    # Object coordinates (u, v) = R(theta) (x - cx, y - cy) / r, separable in x and y.
    dx = (coords.view(1, size) - cx.view(-1, 1)) / radius.view(-1, 1)  # (n * m, S)
    dy = (coords.view(1, size) - cy.view(-1, 1)) / radius.view(-1, 1)
    inside = torch.zeros(n * m, size, size, dtype=torch.bool)
    flat_classes = classes.flatten()
    for k, name in enumerate(SHAPE_NAMES[:num_classes]):  # a loop over classes, not images
        idx = (flat_classes == k).nonzero().flatten()
        c, s = cos[idx].view(-1, 1, 1), sin[idx].view(-1, 1, 1)
        x, y = dx[idx].unsqueeze(1), dy[idx].unsqueeze(2)
        inside[idx] = _SHAPE_TESTS[name](c * x + s * y, c * y - s * x)
    inside = inside.view(n, m, size, size)

    instances = torch.zeros(n, size, size, dtype=torch.uint8)
    for j in range(m):  # painter's algorithm over object slots: later slots on top
        instances[inside[:, j]] = j + 1
    area = inside.view(n, m, -1).view(torch.uint8).sum(dim=2, dtype=torch.int32)
    offsets = torch.arange(n).view(n, 1, 1) * (m + 1)
    counts = torch.bincount((instances.long() + offsets).flatten(), minlength=n * (m + 1))
    visible = counts.view(n, m + 1)[:, 1:]
    ok = ((visible * 2 >= area) & (area > 0) | ~used).all(dim=1)

    background, bg_colours = _backgrounds(n, size, generator)
    colours = _object_colours(n * m, bg_colours.repeat_interleave(m, dim=0), generator)
    colours = colours.view(n, m, 3)
    # A gentle linear shading across each object keeps it from being perfectly flat:
    # shade = 1 + 0.075 (a u - v / 2), an affine function of the pixel position.
    a = torch.rand(n, m, generator=generator).flatten()
    scale = 0.075 / radius.flatten()
    slope_x = scale * (a * cos + 0.5 * sin)
    slope_y = scale * (a * sin - 0.5 * cos)
    offset = 1 - slope_x * cx.flatten() - slope_y * cy.flatten()
    top = (instances.long() - 1).clamp_min(0).view(n, -1)  # object on top of each pixel
    base, per_x, per_y = (
        p.view(n, m).gather(1, top).view(n, 1, size, size) for p in (offset, slope_x, slope_y)
    )
    pixel_shade = base + per_x * coords.view(1, 1, 1, size) + per_y * coords.view(1, 1, size, 1)
    pixel_colour = colours.transpose(1, 2).gather(2, top.unsqueeze(1).expand(n, 3, -1))
    objects = (pixel_colour.view(n, 3, size, size) * pixel_shade).clamp(0, 1)
    image = torch.where(instances.unsqueeze(1) > 0, objects, background)
    image = image + 0.02 * torch.randn(image.shape, generator=generator)
    return image.clamp(0, 1), instances, classes, ok


def generate_shapes(
    num_images: int,
    image_size: int = 64,
    num_classes: int = 6,
    seed: int = 0,
    max_objects: int = 3,
    chunk_size: int = 1000,
) -> ShapesBatch:
    """Generate ``num_images`` shapes-world scenes.

    Parameters
    ----------
    num_images : int
        Number of images.
    image_size : int
        Side ``S`` of the square images (>= 32).
    num_classes : int
        Number of shape classes K (2..8), the first K of :data:`SHAPE_NAMES`.
    seed : int
        Seed; the same arguments always give the same images.
    max_objects : int
        Up to this many objects per image (at least 1).
    chunk_size : int
        Images rendered at once (bounds memory, not results).

    Returns
    -------
    ShapesBatch

    Examples
    --------
    >>> batch = generate_shapes(4, image_size=32, seed=1)
    >>> batch.images.shape, batch.images.dtype
    (torch.Size([4, 3, 32, 32]), torch.uint8)
    >>> batch.labels(6).shape
    torch.Size([4, 6])
    """
    check_positive_int(num_images, "num_images")
    check_positive_int(image_size, "image_size", minimum=32)
    check_positive_int(max_objects, "max_objects")
    check_positive_int(chunk_size, "chunk_size")
    if not 2 <= num_classes <= len(SHAPE_NAMES):
        raise ValueError(f"`num_classes` must be in 2..{len(SHAPE_NAMES)}, got {num_classes}")
    generator = torch.Generator().manual_seed(seed)
    images, instances, classes = [], [], []
    remaining = num_images
    while remaining > 0:
        # Render a few spare scenes and keep those where every object is >= 50% visible.
        n = min(chunk_size, remaining)
        img, inst, cls, ok = _render_chunk(
            n + n // 8 + 4, image_size, num_classes, max_objects, generator
        )
        keep = ok.nonzero().flatten()[:n]
        images.append((img[keep] * 255).round().to(torch.uint8))
        instances.append(inst[keep])
        classes.append(cls[keep])
        remaining -= keep.numel()
    return ShapesBatch(torch.cat(images), torch.cat(instances), torch.cat(classes))


def generate_backgrounds(
    num_images: int, image_size: int = 64, seed: int = 0, chunk_size: int = 1000
) -> Tensor:
    """Object-free shapes-world backgrounds, e.g. to train an inpainter on.

    The same textures (two-colour mix of smooth noise and stripes) and pixel noise as
    :func:`generate_shapes`, without objects.

    Parameters
    ----------
    num_images : int
        Number of images.
    image_size : int
        Side ``S`` of the square images (>= 32).
    seed : int
        Seed; the same arguments always give the same images.
    chunk_size : int
        Images rendered at once (bounds memory, not results).

    Returns
    -------
    Tensor
        ``(N, 3, S, S)`` uint8 RGB images.

    Examples
    --------
    >>> generate_backgrounds(2, image_size=32).shape
    torch.Size([2, 3, 32, 32])
    """
    check_positive_int(num_images, "num_images")
    check_positive_int(image_size, "image_size", minimum=32)
    check_positive_int(chunk_size, "chunk_size")
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, num_images, chunk_size):
        n = min(chunk_size, num_images - start)
        background, _ = _backgrounds(n, image_size, generator)
        background = background + 0.02 * torch.randn(background.shape, generator=generator)
        chunks.append((background.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.cat(chunks)
