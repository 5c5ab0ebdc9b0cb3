"""The package and its docs stand on their own: no outside specification, papers cited."""

import inspect
import re
from pathlib import Path

import pytest
from captum.attr import Attribution

import captum_ext.attr

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["captum_ext", "lightning_callbacks", "docs", "README.md", "mkdocs.yml", "pyproject.toml"]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".html", ".json"}
#: "SPEC" as a word (case-sensitive: ``MethodSpec`` and "specific" are fine), a "spec
#: section N" citation, or the file name of the private notes.
OUTSIDE_SPEC = re.compile(r"\bspec(ification)? section\b|SPEC\.md|\bSPEC\b", re.IGNORECASE)
CASE_SENSITIVE_WORD = re.compile(r"\bSPEC\b")
LINK = re.compile(r"https://(arxiv\.org/abs/\d{4}\.\d{4,5}|doi\.org/10\.\d+/\S+)")
#: Methods that implement no paper of their own.
UNCITED = {"MaskAttribution": "the shared base class", "RandomAttribution": "a sanity baseline"}
#: Papers with no public link we could confirm: the citation must name the title instead.
NO_LINK = {"DSSR": "Discriminative Model-Agnostic Vision Explainer for Differentiable"}


def _text_files():
    for entry in SCANNED:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        yield from (f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES)


def _outside_spec_hits(text: str) -> list[str]:
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in OUTSIDE_SPEC.finditer(line):
            word = match.group(0)
            # "spec" alone in lower case is an ordinary identifier (``spec.name``).
            if word.upper() == "SPEC" and not CASE_SENSITIVE_WORD.fullmatch(word):
                continue
            hits.append(f"{number}: {line.strip()}")
    return hits


def test_no_reference_to_an_outside_specification():
    files = list(_text_files())
    assert len(files) > 50  # the scan found the tree
    found = {
        str(f.relative_to(ROOT)): hits
        for f in files
        if (hits := _outside_spec_hits(f.read_text(encoding="utf-8", errors="replace")))
    }
    assert not found, f"state the decision in the project's own words instead: {found}"


@pytest.mark.parametrize(
    "line, flagged",
    [
        ("(SPEC section 5)", True),
        ("as the spec section 3 says", True),
        ("see ../shared/SPEC.md", True),
        ("from captum_ext.evaluation import MethodSpec", False),
        ("kwargs = spec.attribute_kwargs", False),
        ("class-specific masking", False),
    ],
)
def test_the_scan_flags_citations_only(line, flagged):
    assert bool(_outside_spec_hits(line)) is flagged


def _cited_classes():
    for name in captum_ext.attr.__all__:
        obj = getattr(captum_ext.attr, name)
        if inspect.isclass(obj) and issubclass(obj, Attribution) and name not in UNCITED:
            yield name, obj


def _references_section(doc: str) -> str:
    match = re.search(r"^References\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, flags=re.M | re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("name, cls", list(_cited_classes()))
def test_method_docstring_cites_its_paper(name, cls):
    references = _references_section(inspect.cleandoc(cls.__doc__ or ""))
    assert references, f"{name}'s docstring has no References section"
    assert re.search(r"\b(19|20)\d\d\b", references), f"{name}: the citation has no year"
    if name in NO_LINK:
        assert NO_LINK[name] in " ".join(references.split())
    else:
        assert LINK.search(references), f"{name}: the citation has no arXiv or DOI link"


def test_every_public_method_is_cited_or_exempt():
    classes = {n for n in captum_ext.attr.__all__ if inspect.isclass(getattr(captum_ext.attr, n))}
    assert set(UNCITED) <= classes
    assert {"ExplainerAttribution", "FGVis", "DSSR", "MP2", "SlidingPatch"} <= {
        n for n, _ in _cited_classes()
    }


@pytest.mark.parametrize(
    "page", sorted((ROOT / "docs" / "methods").glob("*.md")), ids=lambda p: p.name
)
def test_method_page_cites_its_paper(page):
    text = page.read_text()
    assert "\n## References\n" in text, f"{page.name} has no References section"
    references = text.split("\n## References\n", 1)[1]
    assert LINK.search(references) or NO_LINK["DSSR"] in " ".join(references.split())
