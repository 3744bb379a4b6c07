"""Running ``crmhub`` in the test process and reading what a person would see."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from crmhub.cli import main


@dataclass
class Output:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(*argv: str) -> Output:
    """Run ``crmhub <argv>`` in this process and capture what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Output(code, out.getvalue(), err.getvalue())
