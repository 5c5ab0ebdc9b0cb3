"""Writing report sections: a Markdown file and a strict-JSON file side by side."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

PathLike = str | Path


def to_json(value: Any) -> Any:
    """``value`` with NaN / inf as ``None``, tensors as lists, tuples as lists.

    Strict JSON has no NaN; metrics that do not apply are NaN in the tables.

    Examples
    --------
    >>> to_json({"a": float("nan"), "b": (1, torch.tensor([0.5]))})
    {'a': None, 'b': [1, [0.5]]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, torch.Tensor):
        return to_json(value.tolist())
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def write_markdown_json(
    output_dir: PathLike, stem: str, markdown: str, data: Any
) -> dict[str, Path]:
    """Write ``stem.md`` and ``stem.json`` (strict JSON) into ``output_dir`` (created).

    Returns
    -------
    dict
        ``{"markdown": path, "json": path}``.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_markdown_json(tempfile.mkdtemp(), "t", "# T", {"x": float("nan")})
    >>> paths["json"].read_text()
    '{\\n  "x": null\\n}\\n'
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / f"{stem}.md", "json": out / f"{stem}.json"}
    paths["markdown"].write_text(markdown.rstrip("\n") + "\n")
    paths["json"].write_text(json.dumps(to_json(data), indent=2, allow_nan=False) + "\n")
    return paths
