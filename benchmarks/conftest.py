"""Shared settings of the benchmark suites.

Quick mode (default) uses tiny sizes so the whole suite runs in CI in minutes;
``--bench-mode full`` uses the paper's set-up (224 x 224, VGG-16 / ResNet-50 classifiers,
DeepLabV3-ResNet50 Explainer). The device is CUDA when available, else CPU; timings on
CUDA are synchronised. ``--channels-last`` and ``--bf16`` are options for CUDA runs;
``--image-size`` replaces the mode's image side (e.g. to see how a ratio scales with it).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch


def pixels(text: str) -> int:
    """``--image-size``'s value: a positive whole number of pixels."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text!r}")
    return int(text)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("captum-ext benchmarks")
    group.addoption(
        "--bench-mode",
        choices=("quick", "full"),
        default="quick",
        help="quick: tiny sizes for CI; full: the paper's 224 x 224 set-up",
    )
    group.addoption("--channels-last", action="store_true", help="channels_last models/inputs")
    group.addoption("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    group.addoption(
        "--work-fraction",
        type=float,
        default=None,
        help="test_table3: run this fraction of each method's paper iterations / "
        "samples / windows and scale the time (default 1 in full mode)",
    )
    group.addoption(
        "--image-size",
        type=pixels,
        default=None,
        help="side of the square test images in pixels (default: 224 in full "
        "mode, 32 in quick mode)",
    )


@dataclass(frozen=True)
class BenchSettings:
    mode: str
    device: torch.device
    image_size: int
    batch_size: int
    channels_last: bool
    bf16: bool

    @property
    def full(self) -> bool:
        return self.mode == "full"

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        module = module.to(self.device).eval()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def inputs(self, n: int | None = None, channels: int = 3) -> torch.Tensor:
        x = torch.randn(
            n or self.batch_size,
            channels,
            self.image_size,
            self.image_size,
            generator=torch.Generator().manual_seed(0),
        ).to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def synchronised(self, fn: Callable[[], object]) -> Callable[[], object]:
        """``fn`` wrapped so a timing includes all its GPU work."""

        def run():
            with self.autocast():
                out = fn()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            return out

        return run


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> BenchSettings:
    mode = request.config.getoption("--bench-mode")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = mode == "full"
    image_size = request.config.getoption("--image-size") or (224 if full else 32)
    return BenchSettings(
        mode=mode,
        device=device,
        image_size=image_size,
        batch_size=(16 if device.type == "cuda" else 4) if full else 2,
        channels_last=request.config.getoption("--channels-last"),
        bf16=request.config.getoption("--bf16"),
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def throughput(benchmark, images: int) -> float | None:
    """Images per second from a finished benchmark, None under --benchmark-disable."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return images / stats.stats.median


def check_target(settings: BenchSettings, ok: bool, message: str) -> None:
    """Assert a speed target in full mode; only warn in quick mode.

    Quick-mode timings are milliseconds on tiny inputs, on a shared CI machine: noise,
    not a measurement of the target.
    """
    if settings.full:
        assert ok, message
    elif not ok:
        warnings.warn(f"speed target missed in quick mode (not gated): {message}", stacklevel=2)


def interleaved_best(*fns: Callable[[], object], rounds: int) -> list[float]:
    """Best wall time (seconds) of each function over ``rounds`` rounds.

    Each round calls every function once, in turn, so that a slow spell of a shared
    machine falls on all of them alike instead of on whichever was being timed.
    """
    best = [math.inf] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
