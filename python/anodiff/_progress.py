"""Progress bars: tqdm when wanted, a silent stand-in otherwise.

Bars are off when the caller says so (`--no-progress`) or when the
environment sets ANODIFF_NO_PROGRESS=1 (tests, batch jobs).
"""
from __future__ import annotations

import os


class NullBar:
    """Accepts the tqdm calls anodiff makes and draws nothing."""

    def update(self, n=1):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def set_postfix_str(self, *args, **kwargs):
        pass

    def write(self, text: str) -> None:
        print(text)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_bar(total=None, *, desc: str | None = None, unit: str = "it", enabled: bool = True,
                 **kwargs):
    """A `tqdm.auto.tqdm` bar, or a `NullBar` when disabled."""
    if not enabled or os.environ.get("ANODIFF_NO_PROGRESS") == "1":
        return NullBar()
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc=desc, unit=unit, **kwargs)
