"""The ``captum-ext`` console script (:func:`captum_ext.cli.main.main` dispatches the
sub-commands); run ``captum-ext --help`` for the list."""

__all__: list[str] = []
