"""Keep or remove ground-truth objects with a filler (robust training and Agarwal Table 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._utils.validation import check_inputs, check_tensor
from captum_ext.fillers.base import Filler, check_filler
from captum_ext.fillers.constant import Constant


def dilate(masks: Tensor, radius: int) -> Tensor:
    """Binary dilation of ``(N, C, H, W)`` masks by a square of side ``2 * radius + 1``.

    Examples
    --------
    >>> m = torch.zeros(1, 1, 5, 5); m[0, 0, 2, 2] = 1
    >>> int(dilate(m, 1).sum())
    9
    """
    if radius <= 0:
        return masks
    return F.max_pool2d(masks.float(), 2 * radius + 1, stride=1, padding=radius)


def default_dilation(image_size: int) -> int:
    """Dilation radius used around objects: 1 px per 32 px of image side."""
    return max(1, round(image_size / 32))


def keep_only(
    images: Tensor,
    keep: Tensor,
    filler: Filler | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill everything outside the ``(N, 1, H, W)`` binary ``keep`` mask.

    Examples
    --------
    >>> x = torch.ones(1, 3, 2, 2)
    >>> keep = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    >>> keep_only(x, keep)[0, 0]
    tensor([[1., 0.],
            [0., 0.]])
    """
    images = check_inputs(images, "images")
    check_tensor(keep, "keep", ndim=4)
    filler = check_filler(filler, default=Constant(0.0))
    return filler(images, keep < 0.5, generator=generator)


def remove_objects(
    images: Tensor,
    masks: Tensor,
    filler: Filler | None = None,
    radius: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill the (dilated) union of ``(N, K, H, W)`` object masks.

    Examples
    --------
    >>> x = torch.ones(1, 3, 4, 4); masks = torch.zeros(1, 2, 4, 4); masks[0, 1, 0, 0] = 1
    >>> int((remove_objects(x, masks, radius=1)[0, 0] == 0).sum())
    4
    """
    images = check_inputs(images, "images")
    holes = dilate(masks.amax(dim=1, keepdim=True), radius) > 0.5
    filler = check_filler(filler, default=Constant(0.0))
    return filler(images, holes, generator=generator)


def keep_random_objects(
    images: Tensor,
    labels: Tensor,
    masks: Tensor,
    probability: float,
    radius: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Masking-robust augmentation: keep only some classes' objects, grey out the rest.

    With ``probability`` per image, a random non-empty subset of the present classes is
    kept (each present class with probability 0.5), their masks dilated by ``radius``,
    everything else filled with ``Constant(0)`` (the mean colour); the labels become the
    kept classes. Other images are returned unchanged.

    Returns
    -------
    images, labels : Tensor
        The augmented batch and its labels.
    """
    n, k = labels.shape
    device = images.device
    draw = torch.rand(n, k + 1, generator=generator).to(device)
    chosen = (draw[:, :k] < 0.5) & (labels > 0.5)
    # Guarantee a non-empty subset: fall back to the present class with the smallest draw.
    fallback = torch.where(labels > 0.5, draw[:, :k], 2.0).argmin(dim=1)
    empty = ~chosen.any(dim=1)
    chosen[empty, fallback[empty]] = True
    chosen &= labels > 0.5
    augment = (draw[:, k] < probability) & (labels > 0.5).any(dim=1)
    keep = (masks * chosen[:, :, None, None]).amax(dim=1, keepdim=True)
    keep = dilate(keep, radius)
    kept_images = keep_only(images, keep)
    out_images = torch.where(augment[:, None, None, None], kept_images, images)
    out_labels = torch.where(augment[:, None], chosen.float(), labels)
    return out_images, out_labels
