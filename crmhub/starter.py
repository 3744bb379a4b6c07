"""``crmhub init``: a commented starter ``.env`` so connecting real CRMs is filling in blanks.

Why a file and not a wizard: the same file documents every variable, works in CI as a template,
and never leaves a secret in shell history. It is written only where none exists (a second
``init`` never overwrites credentials someone already filled in) and is git-ignored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

STARTER = """\
# crmhub settings: read from this file by every crmhub command (variables already set in the
# environment win). Keep it out of git (.gitignore lists it). Leave a CRM's block commented out
# to use the built-in sandbox for that CRM. Check the result with: uv run crmhub doctor

# --- Hub -------------------------------------------------------------------------------------
# CRMHUB_HOME=.crmhub                        # working folder: SQLite hub.db, sandbox, Dagster runs
# CRMHUB_DATABASE_URL=postgresql://crmhub@db.example.com:5432/crmhub   # default: SQLite in CRMHUB_HOME
# CRMHUB_CONFIG_DIR=config                   # rules.yaml (handover/KPI rules), mapping.yaml (fields)

# --- Salesforce (connected app + integration user; see README "Connect your own CRMs") -------
# CRMHUB_SF_INSTANCE_URL=https://yourorg.my.salesforce.com
# CRMHUB_SF_TOKEN_URL=https://yourorg.my.salesforce.com/services/oauth2/token
# CRMHUB_SF_CLIENT_ID=                       # the connected app's consumer key
# CRMHUB_SF_CLIENT_SECRET=                   # its consumer secret (client credentials flow)
# CRMHUB_SF_CA_BUNDLE=                       # only behind a TLS-inspecting proxy

# --- HubSpot (private app; see README for the exact scopes) ----------------------------------
# CRMHUB_HS_ACCESS_TOKEN=                    # pat-...: the private app's access token
# CRMHUB_HS_BASE_URL=https://api.hubapi.com
# CRMHUB_HS_CA_BUNDLE=
"""


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.dir) / ".env"
    if path.exists():
        print(f"{path} exists; left as it is (edit it, then run: uv run crmhub doctor)")
        return 0
    path.write_text(STARTER)
    print(f"Wrote {path}: uncomment and fill in a CRM's block, then run: uv run crmhub doctor")
    print("Field mapping and rules: config/mapping.yaml and config/rules.yaml (both commented).")
    return 0
