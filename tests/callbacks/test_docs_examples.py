"""The Python examples of docs/callbacks.md run, in order, in one namespace."""

import re
from pathlib import Path

import matplotlib

DOC = Path(__file__).resolve().parents[2] / "docs" / "callbacks.md"


def test_callbacks_page_examples_run(monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    namespace = {"__name__": "__docs__"}
    for index, code in enumerate(blocks):
        exec(compile(code, f"docs/callbacks.md python block {index}", "exec"), namespace)
    assert namespace["masks"].routes == ["tensorboard", "png"]
    assert len(namespace["shards"]) == 20
    assert (tmp_path / "runs" / "attributions" / "index.json").exists()
