"""A fit killed mid-epoch and resumed with ``ckpt_path`` ends where the uninterrupted fit ends.

Each test runs the same tiny fit (2 epochs of 3 steps) twice: uninterrupted, and in a
subprocess that SIGKILLs itself mid-epoch, resumed here from the checkpoint it left.
The data loaders are not resumable (Lightning restores a loader's position only for
loaders with ``state_dict``), so a fit resumes exactly from an epoch-end checkpoint
(``ModelCheckpoint``'s default, ``last.ckpt``): the interrupted epoch is replayed from
its start and the final weights, optimiser, schedule and random states are bit-identical.
A mid-epoch checkpoint (``every_n_train_steps``) loses no step either: the resumed fit
runs the epoch's remaining steps (from a fresh data order) and ends on the same step,
schedule and module random stream.
"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training._resume_run import (
    EPOCHS,
    STEPS_PER_EPOCH,
    build,
    differences,
    final_state,
    trainer,
)

ROOT = Path(__file__).resolve().parents[2]


def _killed_run(kind, root, kill_step, *checkpoint_args):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.training._resume_run",
            kind,
            str(root),
            str(kill_step),
            *checkpoint_args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return root / "ckpt" / "last.ckpt"


def _fit(kind, root, ckpt_path=None, **checkpoint):
    module, data = build(kind)
    fit = trainer(root, **checkpoint)
    fit.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return fit, module


@pytest.mark.parametrize("kind", ["explainer", "classifier", "inpainter"])
def test_kill_mid_epoch_then_resume_from_the_epoch_end_checkpoint_is_exact(kind, tmp_path):
    uninterrupted = final_state(*_fit(kind, tmp_path / "a"))
    assert uninterrupted["progress"] == (EPOCHS, EPOCHS * STEPS_PER_EPOCH)

    kill_step = STEPS_PER_EPOCH + 2  # two steps into the second epoch
    last = _killed_run(kind, tmp_path / "b", kill_step)
    saved = torch.load(last, weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (0, STEPS_PER_EPOCH)  # the first epoch's end

    resumed = final_state(*_fit(kind, tmp_path / "b", ckpt_path=last))
    assert differences(uninterrupted, resumed) == []


def test_resume_from_a_mid_epoch_checkpoint_loses_no_step(tmp_path):
    uninterrupted = final_state(*_fit("explainer", tmp_path / "a", every_n_train_steps=2))
    last = _killed_run("explainer", tmp_path / "b", STEPS_PER_EPOCH + 2, "every_n_train_steps=2")
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == STEPS_PER_EPOCH + 1  # one step into the second epoch
    with pytest.warns(UserWarning, match="not resumable"):
        resumed = final_state(
            *_fit("explainer", tmp_path / "b", ckpt_path=last, every_n_train_steps=2)
        )
    assert resumed["progress"] == uninterrupted["progress"]
    assert differences(uninterrupted["schedulers"], resumed["schedulers"]) == []
    assert differences(uninterrupted["generator"], resumed["generator"]) == []
    steps = {s["step"].item() for s in resumed["optimizer"]["state"].values()}
    assert steps == {EPOCHS * STEPS_PER_EPOCH}


def test_loading_weights_outside_fit_leaves_the_global_random_state_alone(tmp_path):
    fit, module = _fit("inpainter", tmp_path)
    torch.manual_seed(123)
    type(module)(**module.hparams)  # building the network draws its initial weights
    expected = torch.get_rng_state()
    torch.manual_seed(123)
    loaded = type(module).load_from_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert torch.equal(torch.get_rng_state(), expected)
    assert torch.equal(loaded.generator.get_state(), module.generator.get_state())
