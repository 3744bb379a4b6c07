"""Turn any error that ends a command into one clear line for the terminal, and an exit code.

Why: a RevOps admin who mistyped a field name or a credential should read what is wrong and how
to fix it, not a traceback. The hub's own error types carry messages vetted to hold no secrets
and are shown as they are; a database error names the (password-free) database URL and the
variable that sets it; anything else is shown by its type only (its text may quote a URL with
a token or a row of personal data) with a pointer to ``-v``, which prints the traceback.
"""

from __future__ import annotations

EXIT_RUN_FAILED = 1
EXIT_CONFIG = 2


def explain(exc: BaseException) -> tuple[str, int]:
    """``(one-line message, exit code)`` for an exception that ended a command."""
    from connectors.errors import ConnectorError, QuotaExhausted, TransientError
    from crmhub.mapping import MappingFileError
    from unified_model.database import HubDatabaseError
    from unified_model.reviews import ReviewError
    from unified_model.rules import RulesError
    from unified_model.settings import SettingsError
    from unified_model.writeback import WritebackAborted, WritebackConfigError
    from unified_model.writer_lock import SyncAlreadyRunning

    if isinstance(exc, TransientError | QuotaExhausted):
        return str(exc), EXIT_RUN_FAILED
    if isinstance(
        exc,
        ConnectorError
        | MappingFileError
        | RulesError
        | WritebackConfigError
        | WritebackAborted
        | HubDatabaseError
        | SettingsError
        | SyncAlreadyRunning,
    ):
        # SyncAlreadyRunning carries its own code (75: "another sync is running")
        return str(exc), int(getattr(exc, "exit_code", EXIT_CONFIG))
    if isinstance(exc, UsageError | ReviewError):
        return str(exc), EXIT_CONFIG
    db = _database_error(exc)
    if db is not None:
        return db, EXIT_CONFIG
    return (
        f"unexpected {type(exc).__name__}; run the command again with -v for the traceback",
        EXIT_RUN_FAILED,
    )


class UsageError(ValueError):
    """A command's input is wrong (bad address, unknown id): the message says what to type."""


def _database_error(exc: BaseException) -> str | None:
    import sqlalchemy.exc

    from crmhub import settings
    from unified_model.database import redact_url

    if not isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        return None
    orig = getattr(exc, "orig", None)
    kind = type(orig).__name__ if orig is not None else type(exc).__name__
    url = redact_url(settings.database_url())
    return (
        f"the hub database {url} failed ({kind}); check CRMHUB_DATABASE_URL, that the database "
        "server runs and the file/user may write (crmhub doctor checks it)"
    )
