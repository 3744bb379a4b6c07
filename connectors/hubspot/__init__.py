"""The HubSpot connector: ``HubSpotConnector`` built from a ``HubSpotConfig``."""

from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConfig", "HubSpotConnector"]
