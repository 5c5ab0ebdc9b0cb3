"""Checks of option values shared by the sub-commands, and the error they raise."""

from __future__ import annotations


class UsageError(Exception):
    """A bad option value that a sub-command finds after parsing (e.g. an unknown method
    name): :func:`captum_ext.cli.main.main` prints it as one line,
    ``captum-ext <command>: error: ...``, and exits with status 2, as argparse does for
    the errors it finds itself."""


def check_methods(methods: list[str] | None) -> list[str] | None:
    """``methods`` unchanged when every name is in the method registry.

    Raises
    ------
    UsageError
        Naming the unknown names and the registered ones.

    Examples
    --------
    >>> check_methods(["gradcam", "random"])
    ['gradcam', 'random']
    >>> check_methods(["nosuch"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    captum_ext.cli.options.UsageError: unknown method 'nosuch' in --methods; available: ...
    """
    if methods is None:
        return None
    from captum_ext.evaluation.methods import available_methods

    available = available_methods()
    unknown = [name for name in methods if name not in available]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise UsageError(
            f"unknown method{'s' if len(unknown) > 1 else ''} {names} in --methods; "
            f"available: {', '.join(available)}"
        )
    return methods
