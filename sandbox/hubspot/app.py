"""HubSpot CRM v3/v4 emulator (placeholder until the emulator lands)."""

from __future__ import annotations

from sandbox.http import EmulatorApp
from sandbox.state import HS


class HubSpotApp(EmulatorApp):
    crm = HS
