"""The field mapping file, for the CLI: it lives in ``unified_model.field_map`` (below the graph).

Why a re-export: the Dagster graph must not import the CLI package; the CLI and tests keep
importing ``crmhub.mapping``.
"""

from unified_model.field_map import *  # noqa: F403
from unified_model.field_map import MappingFileError, load_field_map  # noqa: F401
