"""The ``captum-ext`` console script: a thin dispatcher to sub-commands.

Sub-commands are imported lazily so ``captum-ext --help`` is fast. Training
sub-commands are ``LightningCLI`` programs; the others are jsonargparse CLIs built from
function signatures.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

from captum_ext.cli.options import UsageError

#: name -> (module, function, one-line help). Each function takes the remaining argv.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "captum_ext.cli.demo",
        "main",
        "the shapes-world report of every method (HTML + Markdown + JSON)",
    ),
    "train-classifier": (
        "captum_ext.cli.commands",
        "train_classifier",
        "train the shapes-world classifier (LightningCLI)",
    ),
    "train-explainer": (
        "captum_ext.cli.commands",
        "train_explainer",
        "train a learned Explainer against a frozen classifier (LightningCLI)",
    ),
    "evaluate-explainer": (
        "captum_ext.cli.evaluate_explainer",
        "main",
        "Explainer vs baselines on the shapes world: metric table, Stalder Tables 1-2",
    ),
    "train-inpainter": (
        "captum_ext.cli.commands",
        "train_inpainter",
        "train the mask-aware inpainting U-Net on random holes (LightningCLI)",
    ),
    "check-classifier": (
        "captum_ext.cli.commands",
        "check_classifier",
        "print the classifier's clean / object-only / object-removed exact-match",
    ),
    "removal-effectiveness": (
        "captum_ext.cli.generative",
        "removal_main",
        "Agarwal Table 1: remove objects by constant, blur, noise, inpainting; recall, SSIM",
    ),
    "evaluate-generative": (
        "captum_ext.cli.generative",
        "evaluate_generative_main",
        "Agarwal Tables 2-3: SP/LIME/MP2 and their -G twins on the shapes world",
    ),
    "sensitivity": (
        "captum_ext.cli.generative",
        "sensitivity_main",
        "Agarwal Sec. 4.4: map similarity across SP patch sizes and LIME seeds",
    ),
    "hallucination": (
        "captum_ext.cli.mask_experiments",
        "hallucination",
        "FGVis Table A1: classes generated from a blank image, with / without defence",
    ),
    "reference-entropy": (
        "captum_ext.cli.mask_experiments",
        "reference_entropy",
        "FGVis Table A2: softmax entropy of the fillers' reference images",
    ),
    "evaluate": (
        "captum_ext.cli.evaluate",
        "main",
        "evaluate attribution methods on the shapes world (metric table, figure)",
    ),
    "benchmark-table": (
        "captum_ext.cli.benchmark_table",
        "main",
        "Stalder Table 3: turn the test_table3 pytest-benchmark JSON into the README table",
    ),
    "attribute-dataset": (
        "captum_ext.cli.attribute_dataset",
        "attribute_dataset",
        "write attributions of a whole dataset in shards (trainer.predict, resumable)",
    ),
}


def version() -> str:
    """The installed distribution's version (the package's ``__version__`` when run
    from a source tree that is not installed)."""
    try:
        return metadata.version("captum-ext")
    except metadata.PackageNotFoundError:
        import captum_ext

        return str(getattr(captum_ext, "__version__", "unknown"))


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: captum-ext [--version] <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run `captum-ext <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``captum-ext`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] == "--version":
        print(f"captum-ext {version()}")
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"captum-ext: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    module, function, _ = COMMANDS[name]
    prog = f"captum-ext {name}"
    # argparse (so jsonargparse and LightningCLI) names the program after sys.argv[0]:
    # the usage line and the error tip then name the sub-command.
    program, sys.argv[0] = sys.argv[0], prog
    try:
        getattr(importlib.import_module(module), function)(rest)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        sys.argv[0] = program


if __name__ == "__main__":
    main()
