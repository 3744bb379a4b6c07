"""The Salesforce connector: incremental reads, hard-delete reconciliation, hub-field writeback.

Build it from a :class:`SalesforceConfig` (``auth_from_settings`` picks the login flow from the
credentials that are set) and drive it through the ``connectors.base.Connector`` protocol.
"""

from connectors.salesforce.config import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    RefreshTokenAuth,
    SalesforceAuth,
    SalesforceConfig,
    SessionIdAuth,
    auth_from_settings,
)
from connectors.salesforce.connector import SalesforceConnector

__all__ = [
    "ClientCredentialsAuth",
    "JwtBearerAuth",
    "PasswordAuth",
    "RefreshTokenAuth",
    "SalesforceAuth",
    "SalesforceConfig",
    "SalesforceConnector",
    "SessionIdAuth",
    "auth_from_settings",
]
