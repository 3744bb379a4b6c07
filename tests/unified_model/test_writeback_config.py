"""Writeback configuration: the HubSpot contact suppression fields (and the values a contact
should show), and the survey score written only when a CRM field is mapped to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unified_model import tables as t
from unified_model.writeback import (
    HUB_CONTACT_FIELDS,
    WritebackConfigError,
    contact_values,
    load_writeback_config,
)


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(body)
    return path


def test_contact_fields_default_to_both_and_an_empty_list_switches_them_off(
    tmp_path: Path,
) -> None:
    assert load_writeback_config(_config(tmp_path, "writeback: {}\n")).hubspot_contact_fields == (
        "marketing_suppressed",
        "suppression_reason",
    )
    off = load_writeback_config(_config(tmp_path, "writeback:\n  hubspot_contact_fields: []\n"))
    assert off.hubspot_contact_fields == () and off.contact_specs() == []


def test_an_unknown_contact_field_is_one_line_naming_key_and_choices(tmp_path: Path) -> None:
    path = _config(tmp_path, "writeback:\n  hubspot_contact_fields: [suppressed]\n")
    with pytest.raises(WritebackConfigError) as err:
        load_writeback_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert "writeback.hubspot_contact_fields names 'suppressed'" in message
    assert "marketing_suppressed, suppression_reason" in message


def test_a_contact_shows_the_suppression_only_while_the_customer_is_flagged() -> None:
    config = load_writeback_config(None)
    reason = "open deal 'Renewal' in stage Negotiation/Review, seller Ann Smith, since 2026-11-03"
    flagged = t.CustomerMetrics(
        customer_id="HUB-1", values={"negotiation_flag": True, "suppression_reason": reason}
    )
    assert contact_values(flagged, config) == {
        "marketing_suppressed": "true",
        "suppression_reason": reason,
    }
    # not flagged (or no metrics yet): nothing, never "false" on every contact of the portal
    calm = t.CustomerMetrics(
        customer_id="HUB-1", values={"negotiation_flag": False, "suppression_reason": None}
    )
    assert contact_values(calm, config) == dict.fromkeys(HUB_CONTACT_FIELDS)
    assert contact_values(None, config) == dict.fromkeys(HUB_CONTACT_FIELDS)


def test_the_survey_score_is_written_only_when_a_crm_field_is_mapped(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"
    assert "nps_score" not in load_writeback_config(repo).fields  # the shipped file maps none
    assert "nps_score" not in load_writeback_config(None).fields
    mapped = _config(
        tmp_path, "hubspot:\n  read:\n    nps_score: nps\nwriteback:\n  fields: [health_score]\n"
    )
    assert load_writeback_config(mapped).fields == ("health_score", "nps_score")
    switched_off = _config(tmp_path, "salesforce:\n  read:\n    nps_score: ''\n")
    assert "nps_score" not in load_writeback_config(switched_off).fields
