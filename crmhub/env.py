"""Secrets and settings from a git-ignored ``.env`` file next to where crmhub runs.

Why: exporting eight variables in every new shell is where a first afternoon goes wrong. A
``.env`` in the current folder (``crmhub init`` writes a commented one; ``.gitignore`` keeps it
out of git) is read with python-dotenv before a command starts. Variables already set in the
environment win, so CI and production keep using their secret stores.
"""

from __future__ import annotations

from pathlib import Path


def load_dotenv_file(folder: Path | None = None) -> Path | None:
    """Load ``.env`` from ``folder`` (default: the current folder); the file loaded, or None."""
    from dotenv import load_dotenv

    path = (folder or Path.cwd()) / ".env"
    if not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path
