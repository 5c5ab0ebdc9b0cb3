"""A user-supplied TorchScript inpainter with the LaMa calling convention."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._utils.validation import check_model_device, check_positive_int
from captum_ext.inpainters._checks import check_inpaint_args, chunks, composite


class TorchScriptInpainter:
    """Inpaint with a TorchScript module called as ``model(image, mask) -> image``.

    The LaMa convention (Suvorov et al. 2022, and its TorchScript exports): ``image``
    ``(B, 3, H, W)`` float in [0, 1], ``mask`` ``(B, 1, H, W)`` float with 1 = hole, the
    output an image of the same shape in [0, 1]. Nothing is downloaded: pass the path of
    a model file you have (or a loaded module). The output is kept in the holes only, so
    pixels outside the holes come back bit for bit.

    Parameters
    ----------
    model : str, Path or torch.jit.ScriptModule
        A TorchScript file (loaded with ``torch.jit.load``) or a loaded module.
    device : str or torch.device, optional
        Where to load a model file (default CPU). Inputs must be on the model's device.
    batch_size : int
        Images per call of the model.
    pad_to_multiple : int
        Reflect-pad images (and masks) to a multiple of this before the call and crop
        the output back (LaMa needs 8; 1 disables).

    Examples
    --------
    >>> class MeanFill(torch.nn.Module):
    ...     def forward(self, image, mask):
    ...         return image * (1 - mask) + mask * image.mean(dim=(2, 3), keepdim=True)
    >>> inpainter = TorchScriptInpainter(torch.jit.script(MeanFill()))
    >>> holes = torch.zeros(1, 1, 20, 20, dtype=torch.bool); holes[..., 5:9, 5:9] = True
    >>> inpainter(torch.rand(1, 3, 20, 20), holes).shape
    torch.Size([1, 3, 20, 20])
    """

    def __init__(
        self,
        model: str | Path | torch.jit.ScriptModule,
        device: str | torch.device | None = None,
        batch_size: int = 8,
        pad_to_multiple: int = 8,
    ) -> None:
        if isinstance(model, (str, Path)):
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"no TorchScript inpainter at {str(path)!r}")
            model = torch.jit.load(str(path), map_location=device or "cpu")
        elif not isinstance(model, torch.jit.ScriptModule):
            raise TypeError(
                "`model` must be a path to a TorchScript file or a torch.jit.ScriptModule, "
                f"got {type(model).__name__}"
            )
        elif device is not None:
            model = model.to(device)
        self.model = model.eval()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.pad_to_multiple = check_positive_int(pad_to_multiple, "pad_to_multiple")

    def _call(self, images: Tensor, mask: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        k = self.pad_to_multiple
        pad = (0, (-w) % k, 0, (-h) % k)
        if any(pad):
            mode = "reflect" if pad[1] < w and pad[3] < h else "replicate"
            images, mask = F.pad(images, pad, mode=mode), F.pad(mask, pad, mode=mode)
        out = self.model(images, mask)
        if not isinstance(out, Tensor) or out.shape != images.shape:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the TorchScript inpainter returned {shape} for images of shape "
                f"{tuple(images.shape)}; expected model(image, mask) -> image of the same shape"
            )
        if not bool(torch.isfinite(out).all()):
            raise ValueError("the TorchScript inpainter returned NaN or infinite values")
        return out[..., :h, :w].clamp(0, 1)

    @torch.no_grad()
    def __call__(self, images: Tensor, holes: Tensor) -> Tensor:
        """Fill the holes of ``(N, 3, H, W)`` pixels in [0, 1]; ``holes`` ``(N, 1, H, W)`` bool."""
        images, holes = check_inpaint_args(images, holes)
        check_model_device(self.model, images, "inpainter")
        mask = holes.to(images.dtype)
        parts = [self._call(images[s], mask[s]) for s in chunks(images.shape[0], self.batch_size)]
        return composite(images, holes, torch.cat(parts))

    def __repr__(self) -> str:
        return f"TorchScriptInpainter({self.model.original_name}, batch_size={self.batch_size})"
