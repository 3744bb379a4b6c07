"""Salesforce REST / Bulk API 2.0 emulator (placeholder until the emulator lands)."""

from __future__ import annotations

from sandbox.http import EmulatorApp
from sandbox.state import SF


class SalesforceApp(EmulatorApp):
    crm = SF
