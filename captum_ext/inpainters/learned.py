"""A trained inpainting network (the package's :class:`InpaintingUNet`) as an inpainter."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from captum_ext._utils.validation import check_model_device, check_positive_int
from captum_ext.inpainters._checks import check_inpaint_args, chunks, composite


class LearnedInpainter(nn.Module):
    """Inpaint with a network called as ``model(images, holes, generator=...)``.

    The network (e.g. :class:`~captum_ext.models.inpainting_unet.InpaintingUNet`, trained
    with ``captum-ext train-inpainter``) predicts a whole image; its output is kept in
    the holes only, so pixels outside the holes come back bit for bit. Images are
    processed in chunks of ``batch_size`` without gradients. The network's input noise is
    drawn from a generator seeded with ``seed`` at every call: the same call gives the
    same result.

    This is an ``nn.Module``: move it with ``.to(device)``; inputs must live on the
    network's device.

    Parameters
    ----------
    model : nn.Module
        The inpainting network.
    batch_size : int
        Images per forward pass.
    seed : int
        Seed of the network's input noise.

    Examples
    --------
    >>> from captum_ext.models.inpainting_unet import InpaintingUNet
    >>> inpainter = LearnedInpainter(InpaintingUNet(width=8))
    >>> holes = torch.zeros(2, 1, 32, 32, dtype=torch.bool); holes[..., 4:12, 4:12] = True
    >>> inpainter(torch.rand(2, 3, 32, 32), holes).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, model: nn.Module, batch_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
        self.model = model.eval()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seed = seed

    def train(self, mode: bool = True) -> LearnedInpainter:
        # An inpainter is used for inference only: keep the network in eval mode.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor, holes: Tensor) -> Tensor:
        """Fill the holes of ``(N, 3, H, W)`` pixels in [0, 1]; ``holes`` ``(N, 1, H, W)`` bool."""
        images, holes = check_inpaint_args(images, holes)
        check_model_device(self.model, images, "inpainter")
        generator = torch.Generator().manual_seed(self.seed)
        parts = [
            self.model(images[s], holes[s], generator=generator)
            for s in chunks(images.shape[0], self.batch_size)
        ]
        return composite(images, holes, torch.cat(parts))
