"""Random state a resumed fit continues from, kept in the package's Lightning checkpoints.

A fit resumed from a checkpoint must draw the random numbers the uninterrupted run would
have drawn: from the module's own generator (augmentation, random fillers) and from
torch's global generators (the DataLoader's shuffling and worker seeds, dropout).
Lightning saves neither. Python's and numpy's global generators are left out: the
package does not draw from them, and their states are not plain tensors (checkpoints
stay loadable with ``weights_only=True``).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.trainer.states import TrainerFn

GENERATOR_KEY = "generator_state"
TORCH_KEY = "torch_rng_state"
CUDA_KEY = "cuda_rng_states"


def save_random_state(checkpoint: dict[str, Any], generator: torch.Generator) -> None:
    """Store ``generator``'s state and torch's global (CPU and CUDA) states in ``checkpoint``.

    Examples
    --------
    >>> checkpoint = {}
    >>> save_random_state(checkpoint, torch.Generator().manual_seed(0))
    >>> sorted(checkpoint)
    ['generator_state', 'torch_rng_state']
    """
    checkpoint[GENERATOR_KEY] = generator.get_state()
    checkpoint[TORCH_KEY] = torch.get_rng_state()
    if torch.cuda.is_initialized():
        checkpoint[CUDA_KEY] = torch.cuda.get_rng_state_all()


def load_random_state(
    module: LightningModule, checkpoint: dict[str, Any], generator: torch.Generator
) -> None:
    """Restore what :func:`save_random_state` stored.

    ``generator`` is always restored. Torch's global states only when ``module`` is being
    fitted (``Trainer.fit(..., ckpt_path=...)``): loading weights for evaluation
    (``load_from_checkpoint``, ``validate``, ``test``) leaves the caller's global random
    state alone. CUDA states are restored when the machine has as many GPUs as the one
    that saved them.

    Examples
    --------
    >>> from lightning.pytorch import LightningModule
    >>> checkpoint, generator = {}, torch.Generator().manual_seed(0)
    >>> save_random_state(checkpoint, generator)
    >>> first = torch.rand(1, generator=generator)
    >>> load_random_state(LightningModule(), checkpoint, generator)
    >>> torch.equal(torch.rand(1, generator=generator), first)
    True
    """
    if GENERATOR_KEY in checkpoint:
        generator.set_state(checkpoint[GENERATOR_KEY].cpu())
    trainer = module._trainer
    if trainer is None or trainer.state.fn != TrainerFn.FITTING:
        return
    if TORCH_KEY in checkpoint:
        torch.set_rng_state(checkpoint[TORCH_KEY].cpu())
    cuda = checkpoint.get(CUDA_KEY)
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda])
