"""FGVis supplement Table A2: entropy of the classifier's softmax on reference images.

A good reference carries little information, so the classifier's prediction on it
should be close to uniform (maximum entropy ``log K``). Each filler's reference is
computed for a batch of real images (random fillers draw a new instance per image)
and the entropy (nats) of the softmax over the classifier's outputs is averaged.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from captum_ext.data.samples import collate_samples
from captum_ext.fillers import Blur, Constant, Filler, GaussianNoise, ImageSpace, UniformNoise
from captum_ext.metrics import max_entropy, reference_entropy


class Identity(Filler):
    """The image itself (the table's "ImageNet image" row)."""

    def reference(self, inputs, holes=None, *, generator=None) -> Tensor:
        return inputs

    def __repr__(self) -> str:
        return "Identity()"


def table_a2_fillers(space: ImageSpace) -> dict[str, Filler]:
    """The rows of Table A2 (noise levels on the paper's 0..255 scale) and two more."""
    return {
        "zero image (mean colour)": Constant(0.0),
        "black image": Constant(0.0, space=space),
        "Gaussian noise (sigma_n = 8)": GaussianNoise(8 / 255, space=space),
        "Gaussian noise (sigma_n = 32)": GaussianNoise(32 / 255, space=space),
        "uniform noise U(0, 1) (DSSR)": UniformNoise(space),
        "blurred image (sigma_b = 5)": Blur(5.0),
        "blurred image (sigma_b = 10)": Blur(10.0),
        "image": Identity(),
    }


def reference_entropies(
    model: nn.Module,
    dataset: Dataset,
    fillers: Mapping[str, Filler],
    batch_size: int = 250,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of the softmax entropy for each filler's reference.

    Parameters
    ----------
    model : nn.Module
        The classifier (eval mode).
    dataset : Dataset
        Samples with an ``image``; one reference instance per image.
    fillers : mapping of name to Filler
        The references to compare.
    batch_size : int
        Images per forward pass.
    seed : int
        Seed of the random fillers.

    Returns
    -------
    dict
        ``{name: {"mean": ..., "std": ..., "count": ...}}`` plus ``"maximum (K classes)"``.
    """
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=len(dataset), collate_fn=collate_samples)
    images = next(iter(loader))["image"].to(device)
    result = {}
    for name, filler in fillers.items():
        generator = torch.Generator().manual_seed(seed)
        h = reference_entropy(model, images, filler, batch_size=batch_size, generator=generator)
        result[name] = {"mean": float(h.mean()), "std": float(h.std()), "count": h.numel()}
    with torch.no_grad():
        num_classes = model(images[:1]).shape[1]
    result[f"maximum ({num_classes} classes)"] = {
        "mean": max_entropy(num_classes),
        "std": 0.0,
        "count": 0,
    }
    return result


def entropy_markdown(result: Mapping[str, Mapping[str, float]], model_name: str) -> str:
    """Markdown table in the layout of Table A2."""
    lines = [f"| reference image r | {model_name} |", "|---|---|"]
    for name, s in result.items():
        value = f"{s['mean']:.2f}" if s["std"] == 0 else f"{s['mean']:.2f} ± {s['std']:.2f}"
        lines.append(f"| {name} | {value} |")
    return "\n".join(lines) + "\n"
