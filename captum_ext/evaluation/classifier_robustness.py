"""How well a classifier survives masking: clean, object-only and object-removed accuracy."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from captum_ext.data.object_masking import default_dilation, dilate, keep_only, remove_objects
from captum_ext.data.samples import collate_samples
from captum_ext.fillers import Blur, Constant, Filler, GaussianNoise, ImageSpace, UniformNoise
from captum_ext.utils import preserved_state, require

multilabel_exact_match = require(
    "torchmetrics.functional.classification", extra="report"
).multilabel_exact_match
_image_metrics = require("torchmetrics.functional.image", extra="report")
structural_similarity_index_measure = _image_metrics.structural_similarity_index_measure
multiscale_structural_similarity_index_measure = (
    _image_metrics.multiscale_structural_similarity_index_measure
)


def default_removal_fillers() -> dict[str, Filler]:
    """Fillers compared for object removal: constant (mean colour) and blur (sigma 10)."""
    return {"constant": Constant(0.0), "blur": Blur(10.0)}


@torch.no_grad()
def masking_robustness(
    model: nn.Module,
    dataset: Dataset,
    removal_fillers: Mapping[str, Filler] | None = None,
    batch_size: int = 250,
    radius: int | None = None,
    show_progress: bool = True,
) -> dict[str, float]:
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
    preds: dict[str, list] = {"clean": [], "object_only": []}
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


@torch.no_grad()
def reference_evidence(
    model: nn.Module,
    dataset: Dataset,
    space: ImageSpace,
    batch_size: int = 250,
    seed: int = 0,
) -> dict[str, float]:
    """The most any class scores, on average, on the references of the removal methods.

    A reference (what removed pixels are replaced with) must carry no class evidence, as
    the papers assume on ImageNet classifiers: otherwise a method that fills removed
    pixels with it cannot delete that class. For each reference kind, the classifier's
    sigmoid probabilities are averaged over the images and the largest class mean is
    returned:

    * ``uniform_noise``: :class:`~captum_ext.fillers.UniformNoise`, pixels ``U(0, 1)``
      (DSSR's reference);
    * ``gaussian_noise``: :class:`~captum_ext.fillers.GaussianNoise` with a pixel std
      of 0.25 around the mean colour;
    * ``mean_color``: ``Constant(0)``, the mean colour in a normalised input space
      (FGVis's, SP's);
    * ``blurred``: each image of ``dataset`` blurred with sigma 10 px, the
      ``Blur(10)`` filler's reference.

    Parameters
    ----------
    model : nn.Module
        Multi-label classifier.
    dataset : Dataset
        Samples with ``image`` (the images the blurred reference is made from; their
        number is the number of noise images too).
    space : ImageSpace
        The classifier's input space (noise is drawn in pixels, then mapped).
    batch_size : int
        Images per forward pass.
    seed : int
        Seed of the noise.

    Returns
    -------
    dict of str to float
        ``max_c mean_i sigmoid(F(r_i))_c`` per reference kind.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples)
    fillers: dict[str, Filler] = {
        "uniform_noise": UniformNoise(space),
        "gaussian_noise": GaussianNoise(0.25, space),
        "mean_color": Constant(0.0),
        "blurred": Blur(10.0),
    }
    probs: dict[str, list] = {}
    with preserved_state([model], eval_mode=True):
        for batch in loader:
            images = batch["image"]
            references = {
                name: filler.reference(images, generator=generator)
                for name, filler in fillers.items()
            }
            for name, reference in references.items():
                probs.setdefault(name, []).append(model(reference.to(device)).sigmoid().cpu())
    return {name: float(torch.cat(p).mean(dim=0).max()) for name, p in probs.items()}


#: The first three MS-SSIM scale weights of Wang et al. (2003): 64 x 64 images are too
#: small for the five-scale default (which needs >= 161 px).
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001)


def _similarity(original: Tensor, removed: Tensor) -> dict[str, Tensor]:
    """Per-image SSIM and MS-SSIM (three scales when the image is small) in pixel space."""
    side = min(original.shape[-2:])
    betas = MS_SSIM_BETAS if side < 161 else (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    return {
        "ssim": structural_similarity_index_measure(
            removed, original, data_range=1.0, reduction="none"
        ),
        "ms_ssim": multiscale_structural_similarity_index_measure(
            removed, original, data_range=1.0, reduction="none", betas=betas, normalize="relu"
        ),
    }


@torch.no_grad()
def removal_effectiveness(
    model: nn.Module,
    dataset: Dataset,
    fillers: Mapping[str, Filler],
    space: ImageSpace | None = None,
    batch_size: int = 100,
    radius: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Agarwal & Nguyen's Table 1: how well each filler removes an object's evidence.

    For every image-class pair (every class present in an image), the (dilated) objects
    of that class are filled by each filler. Reported per filler, averaged over pairs:

    * ``recall``: fraction of pairs where the classifier still detects the removed class
      (sigmoid > 0.5); low = the filler removed the evidence;
    * ``other_recall``: recall on the other classes present in the image (should stay
      high: the filler should not destroy the rest of the scene);
    * ``ssim``, ``ms_ssim``: similarity of the filled image to the original in pixel
      space (the paper's MS-SSIM; three scales on images under 161 px).

    A ``"none"`` row holds the clean images.

    Parameters
    ----------
    model : nn.Module
        Multi-label classifier.
    dataset : Dataset
        Samples with ``image`` (input space), ``labels`` and ``masks``.
    fillers : mapping of str to Filler
        Removal fillers by name (input-space fillers; inpainters through ``Inpaint``).
    space : ImageSpace, optional
        The images' normalisation (default ``dataset.space`` or identity).
    batch_size : int
        Images per batch (their pairs are processed together).
    radius : int, optional
        Dilation of the objects (default 1 px per 32 px of image side).
    seed : int
        Seed of random fillers.
    show_progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``filler name -> {"recall", "other_recall", "ssim", "ms_ssim", "pairs"}``.
    """
    space = space or getattr(dataset, "space", None) or ImageSpace()
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples)
    generator = torch.Generator().manual_seed(seed)
    names = ["none", *fillers]
    values: dict[str, dict[str, list]] = {
        n: {"recall": [], "other_recall": [], "ssim": [], "ms_ssim": []} for n in names
    }
    with preserved_state([model], eval_mode=True):
        for batch in tqdm(loader, desc="removal effectiveness", disable=not show_progress):
            labels, masks = batch["labels"].to(device), batch["masks"].to(device)
            pairs = ((labels > 0.5) & (masks.flatten(2).amax(dim=2) > 0.5)).nonzero()
            if pairs.numel() == 0:
                continue
            image_idx, cls = pairs[:, 0], pairs[:, 1]
            images = batch["image"].to(device)[image_idx]
            r = default_dilation(images.shape[-1]) if radius is None else radius
            class_masks = masks[image_idx, cls].unsqueeze(1)
            others = labels[image_idx].clone()
            others[torch.arange(cls.numel(), device=device), cls] = 0
            original = space.to_pixels(images).clamp(0, 1)
            for name in names:
                removed = images
                if name != "none":
                    removed = remove_objects(images, class_masks, fillers[name], r, generator)
                probs = model(removed).sigmoid()
                detected = probs > 0.5
                values[name]["recall"].append(detected.gather(1, cls[:, None])[:, 0].float().cpu())
                other_hits = (detected & (others > 0.5)).sum(dim=1).float()
                values[name]["other_recall"].append(
                    torch.stack([other_hits, others.sum(dim=1)], dim=1).cpu()
                )
                pixels = space.to_pixels(removed).clamp(0, 1)
                for key, value in _similarity(original, pixels).items():
                    values[name][key].append(value.float().cpu())
    out: dict[str, dict[str, float]] = {}
    for name in names:
        counts = torch.cat(values[name]["other_recall"])
        out[name] = {
            "recall": float(torch.cat(values[name]["recall"]).mean()),
            "other_recall": float(counts[:, 0].sum() / counts[:, 1].sum().clamp_min(1)),
            "ssim": float(torch.cat(values[name]["ssim"]).mean()),
            "ms_ssim": float(torch.cat(values[name]["ms_ssim"]).mean()),
            "pairs": int(torch.cat(values[name]["recall"]).numel()),
        }
    return out
