"""The docs site builds with warnings as errors, and the README's Python examples run."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()


def _python_blocks(path: Path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


README_BLOCKS = _python_blocks(ROOT / "README.md")
#: The "Lightning callbacks" example, run (once) by its own test below.
LIGHTNING_BLOCK = next(i for i, code in enumerate(README_BLOCKS) if "lightning_callbacks" in code)


def _run_readme_block(index, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    code = README_BLOCKS[index]
    exec(compile(code, f"README.md python block {index}", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("index", [i for i in range(len(README_BLOCKS)) if i != LIGHTNING_BLOCK])
def test_readme_python_examples_run(index, monkeypatch, tmp_path):
    _run_readme_block(index, monkeypatch, tmp_path)


def test_readme_lightning_example_fits_and_logs_the_metrics(monkeypatch, tmp_path):
    from lightning_callbacks import FaithfulnessMetrics

    trainer = _run_readme_block(LIGHTNING_BLOCK, monkeypatch, tmp_path)["trainer"]
    assert trainer.state.fn == "fit" and trainer.state.status == "finished"
    assert trainer.current_epoch == trainer.max_epochs  # the whole fit ran
    (callback,) = [cb for cb in trainer.callbacks if isinstance(cb, FaithfulnessMetrics)]
    rows = list(csv.DictReader(open(tmp_path / trainer.logger.log_dir / "metrics.csv")))
    for metric in callback.metrics:  # the shapes world has masks: every metric is computed
        key = f"{callback.name}/{metric}"
        values = [float(row[key]) for row in rows if row.get(key)]
        assert len(values) == 1, key  # one event: the end of the only epoch
        assert values[0] == pytest.approx(float(trainer.callback_metrics[key]))
