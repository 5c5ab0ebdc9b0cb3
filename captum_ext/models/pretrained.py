"""Checkpoints shipped inside the package (weights-only files, no download)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch
from torch import nn

from captum_ext.inpainters.learned import LearnedInpainter
from captum_ext.models.inpainting_unet import InpaintingUNet
from captum_ext.models.shapes_classifier import build_shapes_world_classifier
from captum_ext.models.weights import load_weights

PathLike = str | Path


def checkpoint_path(name: str, checkpoint_dir: PathLike | None = None) -> Path:
    """Path of a shipped checkpoint, e.g. ``checkpoint_path("shapes_classifier")``.

    Parameters
    ----------
    name : str
        The checkpoint's name (its file is ``<name>.pt``).
    checkpoint_dir : path, optional
        A directory whose ``<name>.pt`` (e.g. a retrained network, ``captum-ext demo
        --retrain``) takes precedence over the one shipped in the package.

    Examples
    --------
    >>> checkpoint_path("shapes_classifier").name
    'shapes_classifier.pt'
    """
    if checkpoint_dir is not None and (Path(checkpoint_dir) / f"{name}.pt").exists():
        return Path(checkpoint_dir) / f"{name}.pt"
    path = Path(str(files("captum_ext") / "checkpoints" / f"{name}.pt"))
    if not path.exists():
        raise FileNotFoundError(
            f"no shipped checkpoint {name!r} at {path}; see README for the command that trains it"
        )
    return path


#: Shipped shapes-world classifiers: the default (masking-robust, trained with object-free
#: negatives, so that uniform noise, constant and blurred references carry no evidence) and
#: its SiLU variant (the same recipe, ``activation="silu"``; FGVis's defence on a non-ReLU
#: network).
SHAPES_CLASSIFIERS = ("shapes_classifier", "shapes_classifier_silu")


def load_shapes_classifier(
    path: PathLike | None = None,
    device: str | torch.device = "cpu",
    *,
    checkpoint_dir: PathLike | None = None,
) -> nn.Module:
    """A trained shapes-world classifier, in eval mode.

    Parameters
    ----------
    path : path or str, optional
        A weights file written by ``captum-ext train-classifier --export``, or the name
        of a shipped classifier (:data:`SHAPES_CLASSIFIERS`); default the shipped
        ``"shapes_classifier"``. It was also trained on object-free images (noise, flat
        colours, textures) labelled "no class", so that the references of the removal
        methods (DSSR's uniform noise, constant and blurred images) carry no class
        evidence, as the papers assume of ImageNet classifiers.
    device : str or torch.device
        Where to put the model. Its convolution weights are stored channels-last
        (about 1.8x faster on CPU; outputs unchanged).
    checkpoint_dir : path, optional
        A directory whose ``<name>.pt`` replaces the shipped checkpoint (see
        :func:`checkpoint_path`); used when ``path`` is not given or is a shipped name.

    Examples
    --------
    >>> model = load_shapes_classifier()
    >>> model(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 6])
    >>> noise = torch.rand(1, 3, 64, 64) * 4 - 2             # U(0, 1) pixels, normalised
    >>> bool((model(noise) < 0).all())
    True
    """
    if path is None or str(path) in SHAPES_CLASSIFIERS:
        path = checkpoint_path(str(path or "shapes_classifier"), checkpoint_dir)
    payload = load_weights(path)
    model = build_shapes_world_classifier(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    # Channels-last weights: oneDNN's convolutions run about 1.8x faster on CPU, and the
    # layout is what CUDA's tensor cores prefer; the outputs are the same.
    return model.to(device, memory_format=torch.channels_last).eval()


def load_shapes_explainer(
    path: PathLike | None = None,
    device: str | torch.device = "cpu",
    variant: str = "explainer",
    *,
    checkpoint_dir: PathLike | None = None,
):
    """The trained shapes-world Explainer network, in eval mode.

    Parameters
    ----------
    path : path, optional
        A weights file written by ``captum-ext train-explainer --export`` (or a
        Lightning checkpoint); default the shipped checkpoint.
    device : str or torch.device
        Where to put the network.
    variant : {"explainer", "rtis"}
        The shipped network trained with the Explainer loss (default) or with the RTIS
        loss (the paper's baseline).
    checkpoint_dir : path, optional
        A directory whose ``shapes_explainer.pt`` (``shapes_explainer_rtis.pt``)
        replaces the shipped checkpoint (see :func:`checkpoint_path`); used when
        ``path`` is not given.

    Returns
    -------
    SegmentationExplainer
        Maps ``(N, 3, H, W)`` shapes-world inputs to ``(N, 6, H, W)`` logits.

    Examples
    --------
    >>> net = load_shapes_explainer()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 6, 64, 64])
    """
    from captum_ext.models.explainer_nets import load_explainer_net

    names = {"explainer": "shapes_explainer", "rtis": "shapes_explainer_rtis"}
    if variant not in names:
        raise ValueError(f"`variant` must be one of {tuple(names)}, got {variant!r}")
    path = path or checkpoint_path(names[variant], checkpoint_dir)
    return load_explainer_net(path, map_location=device)


def load_shapes_inpainter(
    path: PathLike | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    seed: int = 0,
    *,
    checkpoint_dir: PathLike | None = None,
) -> LearnedInpainter:
    """The learned inpainter trained on shapes-world backgrounds, ready to plug into ``Inpaint``.

    Parameters
    ----------
    path : path, optional
        A weights file written by ``captum-ext train-inpainter --export``; default the
        shipped checkpoint.
    device : str or torch.device
        Where to put the network.
    batch_size, seed
        See :class:`~captum_ext.inpainters.LearnedInpainter`.
    checkpoint_dir : path, optional
        A directory whose ``shapes_inpainter.pt`` replaces the shipped checkpoint (see
        :func:`checkpoint_path`); used when ``path`` is not given.

    Examples
    --------
    >>> inpainter = load_shapes_inpainter()
    >>> holes = torch.zeros(1, 1, 64, 64, dtype=torch.bool); holes[..., 20:40, 20:40] = True
    >>> inpainter(torch.rand(1, 3, 64, 64), holes).shape
    torch.Size([1, 3, 64, 64])
    """
    payload = load_weights(path or checkpoint_path("shapes_inpainter", checkpoint_dir))
    network = InpaintingUNet(**payload["config"])
    network.load_state_dict(payload["state_dict"])
    return LearnedInpainter(network, batch_size=batch_size, seed=seed).to(device)
