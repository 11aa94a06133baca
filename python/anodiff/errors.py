"""The one exception type for user mistakes.

`InputError` is a `ValueError` whose message is a single line naming the
problem (file, dataset, shape, value). The CLI prints it as `anodiff: error: …`
and exits with status 2, never with a traceback.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a missing file, a wrong shape, NaN data, …"""
