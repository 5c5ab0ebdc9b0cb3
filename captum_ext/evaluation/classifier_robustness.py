"""How well a classifier survives masking: clean, object-only and object-removed accuracy."""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional.classification import multilabel_exact_match
from tqdm.auto import tqdm

from captum_ext.data.object_masking import default_dilation, dilate, keep_only, remove_objects
from captum_ext.data.samples import collate_samples
from captum_ext.fillers import Blur, Constant, Filler


def default_removal_fillers() -> Dict[str, Filler]:
    """Fillers compared for object removal: constant (mean colour) and blur (sigma 10)."""
    return {"constant": Constant(0.0), "blur": Blur(10.0)}


@torch.no_grad()
def masking_robustness(
    model: nn.Module,
    dataset: Dataset,
    removal_fillers: Optional[Mapping[str, Filler]] = None,
    batch_size: int = 250,
    radius: Optional[int] = None,
    show_progress: bool = True,
) -> Dict[str, float]:
    """Exact-match of a multi-label classifier on clean and masked images.

    * ``clean``: the images as they are;
    * ``object_only``: everything outside the (dilated) objects filled with
      ``Constant(0)``, the default filler;
    * ``removed/<filler>``: the (dilated) objects filled with each removal filler. Low
      is good for a filler (it removed the evidence); reported, not gated.

    Parameters
    ----------
    model : nn.Module
        Multi-label classifier (sigmoid > 0.5 is a positive).
    dataset : Dataset
        Samples with ``image``, ``labels`` and ``masks``.
    removal_fillers : mapping of str to Filler, optional
        Default :func:`default_removal_fillers`.
    batch_size : int
        Images per forward pass.
    radius : int, optional
        Dilation radius around objects (default 1 px per 32 px of image side).
    show_progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to float
    """
    removal_fillers = dict(removal_fillers or default_removal_fillers())
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples)
    preds: Dict[str, list] = {"clean": [], "object_only": []}
    preds.update({f"removed/{name}": [] for name in removal_fillers})
    targets = []
    was_training = model.training
    model.eval()
    try:
        for batch in tqdm(loader, desc="masking robustness", disable=not show_progress):
            images = batch["image"].to(device)
            masks = batch["masks"].to(device)
            r = default_dilation(images.shape[-1]) if radius is None else radius
            keep = dilate(masks.amax(dim=1, keepdim=True), r)
            variants = {"clean": images, "object_only": keep_only(images, keep)}
            for name, filler in removal_fillers.items():
                variants[f"removed/{name}"] = remove_objects(images, masks, filler, r)
            for name, x in variants.items():
                preds[name].append(model(x).sigmoid().cpu())
            targets.append(batch["labels"].long())
    finally:
        model.train(was_training)
    target = torch.cat(targets)
    num_labels = target.shape[1]
    return {
        name: float(multilabel_exact_match(torch.cat(p), target, num_labels=num_labels))
        for name, p in preds.items()
    }
