"""``captum-ext benchmark-table``: pytest-benchmark JSON -> the Stalder Table 3 comparison."""

from __future__ import annotations

from captum_ext.utils import require

CLI = require("jsonargparse", extra="lightning").CLI


def benchmark_table(
    json: str = "bench.json", output: str | None = None, date: str | None = None
) -> str:
    """Print (and optionally write) the compute-time table of a ``test_table3`` run.

    Run the suite first, e.g.
    ``pytest benchmarks/test_table3.py --benchmark-enable --bench-mode full
    --benchmark-json bench.json``.

    Args:
        json: the ``--benchmark-json`` file (default bench.json).
        output: a Markdown file to write the table to.
        date: date of the measurement shown with the device (default: the file's).
    """
    import json as json_module
    from pathlib import Path

    from captum_ext.evaluation.benchmark_table import load_rows, table3_markdown

    rows = load_rows(json)
    if not rows:
        raise SystemExit(
            f"{json} holds no test_table3 benchmark with timings; run it with --benchmark-enable"
        )
    if date is None:
        date = json_module.loads(Path(json).read_text()).get("datetime", "")[:10] or None
    table = table3_markdown(rows, date=date)
    if output:
        Path(output).write_text(table + "\n")
    print(table)
    return table


def main(argv: list[str]) -> None:
    """``captum-ext benchmark-table --json bench.json [--output table3.md]``."""
    CLI(benchmark_table, args=argv)
