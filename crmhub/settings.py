"""The hub's settings, for the CLI: they live in ``unified_model.settings`` (below the graph).

Why a re-export: the Dagster graph must not import the CLI package, and the CLI, tests and
benchmarks have always imported ``crmhub.settings``; both now read one module.
"""

from unified_model.settings import *  # noqa: F403
from unified_model.settings import PROJECT_ROOT, Mode  # noqa: F401 (explicit for type checkers)
