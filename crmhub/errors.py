"""Turn the hub's known configuration errors into one clear line for the terminal.

Why: a RevOps admin who mistyped a field name or a credential should read what is wrong and how
to fix it, not a traceback. Only our own error types are explained (their messages are vetted to
hold no secrets); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


def explain(exc: BaseException) -> str | None:
    from connectors.errors import ConnectorError
    from crmhub.mapping import MappingFileError
    from unified_model.database import HubDatabaseError
    from unified_model.rules import RulesError
    from unified_model.writeback import WritebackAborted, WritebackConfigError
    from unified_model.writer_lock import SyncAlreadyRunning

    if isinstance(
        exc,
        ConnectorError
        | MappingFileError
        | RulesError
        | WritebackConfigError
        | WritebackAborted
        | HubDatabaseError
        | SyncAlreadyRunning,
    ):
        return str(exc)
    return None
