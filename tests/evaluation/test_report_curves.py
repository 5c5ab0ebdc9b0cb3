"""The deletion / insertion figure: every method's curve can be told from every other."""

import matplotlib.colors
import pytest

from captum_ext.evaluation import EvaluationResult
from captum_ext.evaluation.report import curve_styles, curves_figure, write_curves

# The demo's 14 methods, in its order (Explainer and LIME-G shared tab10's blue before).
METHODS = [
    "Explainer",
    "RTIS",
    "GradCAM",
    "Random",
    "FGVis",
    "DSSR",
    "DSSR+",
    "SP",
    "SP-G",
    "LIME",
    "LIME-G",
    "MP2",
    "MP2-G",
    "Occlusion",
]


def _result(methods):
    fractions = [i / 4 for i in range(5)]
    curves = {
        m: {
            "deletion_curve": [1 - f * (i + 1) / 30 for f in fractions],
            "insertion_curve": [f * (i + 1) / 30 for f in fractions],
        }
        for i, m in enumerate(methods)
    }
    return EvaluationResult(
        list(methods), {}, [], {}, {"score": "softmax"}, curves=curves, curve_fractions=fractions
    )


def _drawn(fig):
    """Per panel: ``label -> (RGBA colour, line style, marker)`` read back from the Line2Ds."""
    return [
        {
            line.get_label(): (
                matplotlib.colors.to_rgba(line.get_color()),
                line.get_linestyle(),
                line.get_marker(),
            )
            for line in ax.get_lines()
        }
        for ax in fig.axes
    ]


@pytest.mark.parametrize("count", [len(METHODS), 20, 45])
def test_no_two_curves_share_colour_and_line_style(count):
    methods = (METHODS + [f"extra {i}" for i in range(count)])[:count]
    fig = curves_figure(_result(methods))
    panels = _drawn(fig)
    assert len(panels) == 2
    for drawn in panels:
        assert list(drawn) == methods  # every method drawn, once, under its own name
        assert len(set(drawn.values())) == count  # ... with its own look
    assert panels[0] == panels[1]  # the same look in both panels
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == methods


def test_methods_that_shared_a_colour_now_differ_in_style():
    drawn = _drawn(curves_figure(_result(METHODS)))[0]
    colour, style, _ = drawn["Explainer"]
    assert drawn["LIME-G"][0] == colour and drawn["LIME-G"][1] != style
    assert drawn["RTIS"][:2] != drawn["MP2"][:2]


def test_write_curves_saves_a_png_and_too_many_methods_is_an_error(tmp_path):
    path = write_curves(_result(METHODS), tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at most 120 methods"):
        curve_styles([str(i) for i in range(121)])
