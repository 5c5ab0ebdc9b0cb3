"""FGVis supplement Table A1: can the generation game hallucinate a class from a blank image?

From a constant input image (the paper: all black, in pixel space) and a constant
reference that differs from it, the generation game with lambda = 0 is run for every
class other than the input's top-1 class and the starting condition's top-1 class
(``0 * x + 1 * r``, where the generation game starts). A class counts as *generated*
when it is the top-1 class of ``m * x + (1 - m) * r`` at the end. The table reports the
fraction of generated classes without and with the gradient-filtering defence.

With few classes (the shapes world has 6), one black image gives only 4-5 candidate
classes; :func:`hallucination_rates` therefore also runs from several constant starting
colours and references and reports every (start, reference, class) triple it counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from captum_ext.attr.fgvis import FGVis
from captum_ext.fillers import Constant, ImageSpace, remove

#: Constant pixel-space colours used as starting images (black first: the paper's).
DEFAULT_STARTS: dict[str, tuple[float, float, float]] = {
    "black": (0.0, 0.0, 0.0),
    "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
}
#: Constant pixel-space references (mid-grey is the paper's "gray" and, for a dataset
#: normalised around 0.5, the mean colour).
DEFAULT_REFERENCES: dict[str, tuple[float, float, float]] = {
    "mid-grey": (0.5, 0.5, 0.5),
    "dark-grey": (0.25, 0.25, 0.25),
}


def _constant_image(colour: Sequence[float], space: ImageSpace, shape: tuple[int, ...]) -> Tensor:
    return Constant(list(colour), space=space).reference(torch.zeros(shape))


def candidate_triples(
    model: nn.Module,
    space: ImageSpace,
    image_size: int,
    starts: Mapping[str, Sequence[float]],
    references: Mapping[str, Sequence[float]],
) -> list[dict[str, Any]]:
    """Every (start, reference, class) triple of the experiment.

    Classes equal to the start image's top-1 or the reference's top-1 are left out, and
    so are pairs whose start and reference colours coincide (nothing can be generated).
    """
    device = next(model.parameters()).device
    shape = (1, 3, image_size, image_size)
    triples = []
    with torch.no_grad():
        for ref_name, ref_colour in references.items():
            reference = _constant_image(ref_colour, space, shape).to(device)
            ref_top1 = int(model(reference).argmax(1))
            for start_name, start_colour in starts.items():
                if tuple(start_colour) == tuple(ref_colour):
                    continue
                image = _constant_image(start_colour, space, shape).to(device)
                logits = model(image)
                start_top1 = int(logits.argmax(1))
                for cls in range(logits.shape[1]):
                    if cls in (start_top1, ref_top1):
                        continue
                    triples.append(
                        {
                            "start": start_name,
                            "reference": ref_name,
                            "class": cls,
                            "start_top1": start_top1,
                            "reference_top1": ref_top1,
                        }
                    )
    return triples


def hallucination_rates(
    model: nn.Module,
    space: ImageSpace,
    image_size: int = 64,
    starts: Mapping[str, Sequence[float]] | None = None,
    references: Mapping[str, Sequence[float]] | None = None,
    iterations: int = 500,
    batch_size: int = 64,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the generation game (lambda = 0, softmax/CE as in the paper) on every triple.

    Parameters
    ----------
    model : nn.Module
        The classifier (eval mode), on the device to use.
    space : ImageSpace
        Its normalisation (colours are given in pixel space).
    image_size : int
        Side of the constant images.
    starts, references : mapping of name to RGB colour in [0, 1], optional
        Default :data:`DEFAULT_STARTS` and :data:`DEFAULT_REFERENCES`.
    iterations : int
        SGD iterations of the generation game (paper: 500).
    batch_size : int
        Triples optimised together.
    show_progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``rows``: one entry per triple with ``generated`` without / with the defence;
        ``summary``: counts and rates overall and for the black-image, mid-grey
        reference subset (the paper's setting).
    """
    starts = dict(DEFAULT_STARTS if starts is None else starts)
    references = dict(DEFAULT_REFERENCES if references is None else references)
    device = next(model.parameters()).device
    triples = candidate_triples(model, space, image_size, starts, references)
    shape = (1, 3, image_size, image_size)
    for defense in (False, True):
        key = "generated_with_defense" if defense else "generated_without_defense"
        for ref_name, ref_colour in references.items():
            group = [t for t in triples if t["reference"] == ref_name]
            filler = Constant(list(ref_colour), space=space)
            method = FGVis(
                model,
                game="generation",
                filler=filler,
                lambda_=0.0,
                iterations=iterations,
                defense=defense,
                score="softmax",
            )
            for first in range(0, len(group), batch_size):
                chunk = group[first : first + batch_size]
                images = torch.cat(
                    [_constant_image(starts[t["start"]], space, shape) for t in chunk]
                ).to(device)
                target = torch.tensor([t["class"] for t in chunk], device=device)
                mask = method.attribute(
                    images, target=target, return_map=True, show_progress=show_progress
                )
                with torch.no_grad():
                    explained = remove(images, mask, filler.reference(images))
                    top1 = model(explained).argmax(1)
                for triple, cls in zip(chunk, top1.tolist()):
                    triple[key] = cls == triple["class"]
    return {"rows": triples, "summary": summarize(triples)}


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Counts and rates, overall and for the paper's black-start / mid-grey subset.

    Examples
    --------
    >>> rows = [{"start": "black", "reference": "mid-grey", "generated_without_defense": True,
    ...          "generated_with_defense": False}]
    >>> summarize(rows)["all"]["rate_without_defense"]
    1.0
    """

    def stats(subset: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        n = len(subset)
        without = sum(bool(r["generated_without_defense"]) for r in subset)
        with_ = sum(bool(r["generated_with_defense"]) for r in subset)
        return {
            "classes_tried": n,
            "generated_without_defense": without,
            "generated_with_defense": with_,
            "rate_without_defense": without / n if n else float("nan"),
            "rate_with_defense": with_ / n if n else float("nan"),
        }

    paper = [r for r in rows if r["start"] == "black" and r["reference"] == "mid-grey"]
    return {"all": stats(rows), "black/mid-grey": stats(paper)}


def hallucination_markdown(result: Mapping[str, Any], model_name: str = "shapes classifier") -> str:
    """Markdown table in the layout of the supplement's Table A1, with the counts."""
    summary = result["summary"]
    lines = [
        "Generation game, lambda = 0: fraction of classes that become top-1 (Table A1).",
        "",
        "| setting | classes tried | No Defense | Defended |",
        "|---|---|---|---|",
    ]
    for name, s in summary.items():
        label = "black image, mid-grey reference" if name != "all" else ("all starts x references")
        lines.append(
            f"| {model_name}: {label} | {s['classes_tried']} | "
            f"{100 * s['rate_without_defense']:.1f}% ({s['generated_without_defense']}) | "
            f"{100 * s['rate_with_defense']:.1f}% ({s['generated_with_defense']}) |"
        )
    lines += ["", "| start | reference | class | no defense | defended |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(
            f"| {r['start']} | {r['reference']} | {r['class']} | "
            f"{'yes' if r['generated_without_defense'] else 'no'} | "
            f"{'yes' if r['generated_with_defense'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"
