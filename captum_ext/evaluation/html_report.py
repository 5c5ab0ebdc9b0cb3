"""Render a Markdown report as a self-contained HTML page (figures beside it)."""

from __future__ import annotations

import html
from pathlib import Path

from captum_ext.utils import require

markdown = require("markdown", extra="report")


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f5f5f5; padding: 0 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
"""


def markdown_to_html(text: str, title: str) -> str:
    """A complete HTML document for the Markdown ``text`` (tables supported).

    Examples
    --------
    >>> page = markdown_to_html("| a |\\n|---|\\n| 1 |", "t")
    >>> "<table>" in page and "<title>t</title>" in page
    True
    """
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_html(markdown_path: str | Path, html_path: str | Path, title: str) -> Path:
    """Render ``markdown_path`` to ``html_path``; relative image links keep working."""
    html_path = Path(html_path)
    html_path.write_text(markdown_to_html(Path(markdown_path).read_text(), title))
    return html_path
