"""``captum-ext demo`` writes a complete, linked report (HTML + Markdown + JSON)."""

import json
from html.parser import HTMLParser

import pytest

from captum_ext.cli.main import main
from captum_ext.evaluation.demo import DemoSettings, run_demo

TINY = DemoSettings(
    num_images=2,
    table_images=2,
    removal_images=3,
    quality_images=2,
    hallucination_paper_setting_only=True,
    hallucination_iterations=5,
    attribute_overrides={"sp": {"strides": 16}, "sp_g": {"strides": 16}},
)
METHODS = ("explainer", "gradcam", "sp", "sp_g", "random")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.headings, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag in ("h1", "h2"):
            self._in = tag

    def handle_data(self, data):
        if self._in:
            self.headings.append(data.strip())

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    paths = run_demo(out, settings=TINY, methods=METHODS, show_progress=False)
    return out, paths


def test_html_report_has_every_section_and_its_figures(report):
    out, paths = report
    page = _Page()
    page.feed(paths["html"].read_text())
    assert page.headings[0] == "captum-ext demo report"
    for section in (
        "Methods",
        "Throughput",
        "Tables 1 and 2",
        "Removal effectiveness",
        "Hallucination",
    ):
        assert section in page.headings
    # Metric, throughput, Table 1, Table 2, removal, inpainting quality, hallucination.
    assert page.tags.count("table") >= 7
    assert {"figure.png", "curves.png", "removal.png", "class_masks.png"} <= set(page.images)
    for src in page.images:
        assert (out / src).stat().st_size > 1000


def test_json_report_is_strict_and_complete(report):
    out, paths = report

    def no_nan(token):
        raise AssertionError(f"non-JSON constant {token}")

    data = json.loads(paths["json"].read_text(), parse_constant=no_nan)
    assert set(data["metrics"]["table"]) == {"Explainer", "GradCAM", "SP", "SP-G", "Random"}
    assert set(data["throughput"]) == {"Explainer", "GradCAM", "SP", "SP-G", "Random"}
    assert data["throughput"]["Explainer"]["ratio_to_explainer"] == pytest.approx(1.0)
    assert set(data["tables"]["table1"]) == {"Explainer", "GradCAM"}
    assert data["stage_seconds"]["total"] >= sum(
        data["stage_seconds"][k] for k in ("methods", "tables", "removal", "hallucination")
    )
    # SP-G and its twin on three deletion substrates, with the -G vs twin check.
    deletion = data["substrates"]["deletion_auc"]
    assert set(deletion) == {"SP", "SP-G"}
    assert set(deletion["SP"]) == {"constant (paper)", "blur (sigma 3)", "learned inpainting"}
    # the constant column is the harness's deletion AUC
    harness = data["metrics"]["table"]["SP"]["deletion_auc"]
    assert deletion["SP"]["constant (paper)"] == pytest.approx(harness, abs=1e-5)
    expected = deletion["SP-G"]["learned inpainting"] < deletion["SP"]["learned inpainting"]
    assert data["substrates"]["beats_twin"]["SP-G"]["learned inpainting"] == expected
    # next to the table, the removal numbers of the same run explain the constant column
    grey = data["removal"]["table"]["grey (mean colour)"]["recall"]
    methods_section = paths["markdown"].read_text().split("## Throughput")[0]
    assert "Deletion AUC by substrate" in methods_section
    assert f"{100 * grey:.0f}% of the pairs after a grey fill" in methods_section
    assert f"Measured on {len(data['metrics']['pairs'])} image-class pairs" in methods_section
    # The attribute override reached the harness.
    assert data["settings"]["attribute_overrides"]["sp"] == {"strides": 16}


def test_demo_cli_rejects_unknown_method(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--output_dir", str(tmp_path), "--methods", "[nope]"])
    assert info.value.code == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # rejected before any work
