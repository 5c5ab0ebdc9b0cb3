"""A dataset writer killed in the middle of a shard write resumes with nothing corrupt,
lost or duplicated."""

import signal
import subprocess
import sys
import time

import torch

from lightning_callbacks import AttributionShards
from lightning_callbacks.shards import INDEX_FILE, META_FILE, SHARD_GLOB, shard_name
from tests.callbacks import kill_writer

SHARDS = [shard_name(0, 0, s) for s in range(3)]


def test_kill_during_a_shard_write_then_resume(tmp_path):
    out = tmp_path / "killed"
    out.mkdir()
    log = open(tmp_path / "child.log", "w")
    child = subprocess.Popen(
        [sys.executable, kill_writer.__file__, str(out), "1"], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 300
    while not (out / "stalled").exists():  # the second shard is half-written
        assert child.poll() is None, (tmp_path / "child.log").read_text()
        assert time.monotonic() < deadline, "the writer never reached the stalled write"
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL

    directory = out / "attributions"
    on_disk = sorted(p.name for p in directory.glob(SHARD_GLOB))
    assert on_disk == SHARDS[:1]  # the first shard; the second was half-written
    for name in on_disk:  # every shard that exists is whole
        torch.load(directory / name, weights_only=True)

    writer = kill_writer.predict(out)
    assert writer.skipped == SHARDS[:1] and writer.written == SHARDS[1:]
    # only the layout's files are left: shards, meta.json, index.json
    assert sorted(p.name for p in directory.iterdir()) == SHARDS + [INDEX_FILE, META_FILE]
    for name in SHARDS:
        torch.load(directory / name, weights_only=True)
    resumed = AttributionShards(directory)  # the index build rejects a duplicated sample
    ids = torch.cat([torch.load(directory / n, weights_only=True)["index"] for n in SHARDS])
    assert sorted(ids.tolist()) == list(range(kill_writer.NUM_IMAGES))  # none lost, none twice

    kill_writer.predict(tmp_path / "reference")
    reference = AttributionShards(tmp_path / "reference" / "attributions")
    assert resumed.sample_ids() == reference.sample_ids()
    for i in reference:
        assert torch.equal(resumed[i]["attribution"], reference[i]["attribution"])
        assert torch.equal(resumed[i]["target"], reference[i]["target"])
