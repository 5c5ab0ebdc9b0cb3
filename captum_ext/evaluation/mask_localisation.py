"""Pointing game and continuous IoU of FGVis and DSSR+ next to Grad-CAM (shapes world).

Every (image, ground-truth class) pair of the first ``num_images`` test images is
attributed by each method; the map is scored against that class's pixel mask:

* **pointing**: a hit when the map's maximum lies within ``tolerance`` pixels of the
  class mask (15 px at 224 x 224, scaled with the image side);
* **continuous IoU**: ``sum(min(a, g)) / sum(max(a, g))`` with the map clamped at 0 and
  divided by its maximum (SPEC section 6, CALIBRATION.md).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from captum_ext.attr import DSSR, FGVis
from captum_ext.data.object_masking import dilate
from captum_ext.data.samples import collate_samples
from captum_ext.fillers import ImageSpace

Method = Callable[[Tensor, Tensor], Tensor]  # (images, targets) -> (N, 1, H, W) maps


def pointing_hits(maps: Tensor, masks: Tensor, tolerance: int) -> Tensor:
    """Bool ``(N,)``: is each map's argmax within ``tolerance`` px of its ``(N, 1, H, W)`` mask?

    Examples
    --------
    >>> maps = torch.zeros(2, 1, 5, 5); maps[0, 0, 0, 0] = 1; maps[1, 0, 4, 4] = 1
    >>> masks = torch.zeros(2, 1, 5, 5); masks[:, :, 1, 1] = 1
    >>> pointing_hits(maps, masks, tolerance=1).tolist()
    [True, False]
    """
    flat = maps.flatten(1).argmax(dim=1)
    region = dilate(masks, tolerance).flatten(1) > 0
    return region.gather(1, flat[:, None]).squeeze(1)


def continuous_iou(maps: Tensor, masks: Tensor) -> Tensor:
    """``(N,)`` continuous IoU after clamping at 0 and dividing by the maximum.

    Examples
    --------
    >>> maps = torch.tensor([[[[2.0, 1.0]]]]); masks = torch.tensor([[[[1.0, 0.0]]]])
    >>> continuous_iou(maps, masks)
    tensor([0.6667])
    """
    a = maps.clamp_min(0).flatten(1)
    a = a / a.amax(dim=1, keepdim=True).clamp_min(1e-12)
    g = masks.flatten(1).float()
    return torch.minimum(a, g).sum(1) / torch.maximum(a, g).sum(1).clamp_min(1e-12)


def default_methods(
    model: nn.Module, space: ImageSpace, fgvis_iterations: int = 500,
    dssr_iterations: int = 300, fgvis_lambda: float = 1e-4, score: str = "sigmoid",
) -> Dict[str, Method]:
    """FGVis (deletion, preservation), DSSR+ and Grad-CAM, as ``(images, targets) -> maps``."""
    layer = getattr(model, "gradcam_layer", None)
    gradcam = LayerGradCam(model, layer) if layer is not None else None
    fgvis = {
        game: FGVis(model, game=game, lambda_=fgvis_lambda, iterations=fgvis_iterations,
                    score=score)
        for game in ("deletion", "preservation")
    }
    dssr = DSSR(model, space=space, iterations=dssr_iterations, score=score)

    def grad_cam(x: Tensor, t: Tensor) -> Tensor:
        cam = gradcam.attribute(x, target=t, relu_attributions=True)
        return LayerAttribution.interpolate(cam, x.shape[-2:], "bilinear")

    methods: Dict[str, Method] = {
        "FGVis (deletion)": lambda x, t: fgvis["deletion"].attribute(x, t, return_map=True),
        "FGVis (preservation)": lambda x, t: fgvis["preservation"].attribute(
            x, t, return_map=True),
        "DSSR+": lambda x, t: dssr.attribute(x, t, return_map=True),
    }
    if gradcam is not None:
        methods["GradCAM"] = grad_cam
    return methods


def image_class_pairs(dataset: Dataset, num_images: int) -> Dict[str, Tensor]:
    """Images, targets and class masks of every ground-truth class of the first images."""
    loader = DataLoader(
        [dataset[i] for i in range(min(num_images, len(dataset)))],
        batch_size=num_images, collate_fn=collate_samples,
    )
    batch = next(iter(loader))
    image_idx, classes = batch["labels"].nonzero(as_tuple=True)
    return {
        "images": batch["image"][image_idx],
        "targets": classes,
        "masks": batch["masks"][image_idx, classes][:, None],
        "image_index": image_idx,
    }


def evaluate_localisation(
    methods: Mapping[str, Method],
    pairs: Mapping[str, Tensor],
    batch_size: int = 32,
    tolerance: Optional[int] = None,
    show_progress: bool = True,
) -> Dict[str, Dict[str, Any]]:
    """Pointing accuracy and mean continuous IoU of each method over all pairs."""
    images, targets, masks = pairs["images"], pairs["targets"], pairs["masks"]
    side = images.shape[-1]
    tolerance = max(1, round(15 * side / 224)) if tolerance is None else tolerance
    results: Dict[str, Dict[str, Any]] = {}
    for name, method in methods.items():
        hits: List[Tensor] = []
        ious: List[Tensor] = []
        start = time.perf_counter()
        chunks = range(0, len(targets), batch_size)
        for first in tqdm(chunks, desc=name, disable=not show_progress):
            x = images[first:first + batch_size]
            t = targets[first:first + batch_size]
            g = masks[first:first + batch_size].to(x.device)
            maps = method(x, t).detach()
            hits.append(pointing_hits(maps, g, tolerance).cpu())
            ious.append(continuous_iou(maps, g).cpu())
        hit, iou = torch.cat(hits).float(), torch.cat(ious)
        results[name] = {
            "pointing": float(hit.mean()), "iou": float(iou.mean()), "pairs": hit.numel(),
            "seconds": time.perf_counter() - start, "tolerance_px": tolerance,
        }
    return results


def localisation_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table: method, pointing accuracy, continuous IoU, pairs, time."""
    lines = [
        "| method | pointing | continuous IoU | image-class pairs | seconds |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['pointing']:.3f} | {r['iou']:.3f} | {r['pairs']} | "
            f"{r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"
