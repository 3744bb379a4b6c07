"""The rules loader returns the documented defaults, merges partial files onto them, and rejects
every kind of mistake with a RulesError that names the key path, what is wrong and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from unified_model.rules import (
    DEFAULT_RULES_PATH,
    HubRules,
    PerCrm,
    RulesError,
    load_rules,
    parse_rules,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_file_equals_builtin_defaults() -> None:
    from_file = load_rules(DEFAULT_RULES_PATH)
    assert from_file == load_rules(None) == HubRules()
    # spot-check the values the brief fixes, so a drift in both places is caught too
    assert from_file.handover.rule == "maturity"
    assert from_file.handover.calendar_after_contract.days == 90
    assert from_file.handover.calendar_after_go_live.days == 60
    assert from_file.handover.maturity.critical_priorities == PerCrm(("Critical",), ("URGENT",))
    assert from_file.handover.maturity.user_error_categories.hubspot == ("USER_ERROR",)
    assert from_file.handover.account_managers.departments == ("Account Management",)
    assert from_file.kpis.quote_stages == PerCrm(("Proposal/Price Quote",), ("contractsent",))
    assert from_file.kpis.stale_deal_days == 30
    assert from_file.kpis.marketing_touch_window_days == 14
    # the relay zone is off by default (no earliest / latest day, no stable period), no segments
    assert not from_file.handover.zone.active and from_file.handover.segments == ()
    assert from_file.kpis.unanswered_after_hours == 24


def test_relay_zone_and_segments_load(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            "handover:\n"
            "  zone: {anchor: go_live, earliest_days: 30, latest_days: 120, stable_days: 60}\n"
            "  segments:\n"
            "    - name: SMB\n"
            "      when: {employees_max: 50}\n"
            "      rule: calendar_after_go_live\n"
            "      days: 30\n"
            "    - name: Payroll\n"
            "      when: {product_lines: [Payroll], owner_teams: [Enterprise]}\n"
            "      zone: {latest_days: 90}\n",
        )
    )
    z = rules.handover.zone
    assert (z.anchor, z.earliest_days, z.latest_days, z.stable_days) == ("go_live", 30, 120, 60)
    smb, payroll = rules.handover.segments
    assert (smb.name, smb.when.employees_max, smb.rule, smb.days) == (
        "SMB",
        50,
        "calendar_after_go_live",
        30,
    )
    assert payroll.rule is None and payroll.zone is not None
    assert (payroll.zone.earliest_days, payroll.zone.latest_days) == (None, 90)
    assert payroll.when.product_lines == ("Payroll",)


def test_partial_file_overrides_only_its_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "handover:\n  rule: calendar_after_go_live\n  calendar_after_go_live: {days: 45}\n"
        "kpis:\n  business_hours: {timezone: UTC}\n",
    )
    rules = load_rules(path)
    defaults = HubRules()
    assert rules.handover.rule == "calendar_after_go_live"
    assert rules.handover.calendar_after_go_live.days == 45
    assert rules.kpis.business_hours.timezone == "UTC"
    assert rules.kpis.business_hours.start_hour == defaults.kpis.business_hours.start_hour
    assert rules.handover.maturity == defaults.handover.maturity
    # an empty file is the defaults
    assert load_rules(write(tmp_path, "")) == defaults


def test_numbers_given_as_integers_become_floats_and_null_disables(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            "handover:\n  at_risk:\n    usage_score_below: 35\n    usage_drop_points: null\n",
        )
    )
    assert rules.handover.at_risk.usage_score_below == 35.0
    assert isinstance(rules.handover.at_risk.usage_score_below, float)
    assert rules.handover.at_risk.usage_drop_points is None


def test_per_crm_values_match_case_insensitively_and_per_crm_only() -> None:
    crit = PerCrm(salesforce=("Critical",), hubspot=("URGENT",))
    assert crit.matches("salesforce", "critical ")
    assert crit.matches("hubspot", "urgent")
    assert not crit.matches("hubspot", "Critical")  # a Salesforce value on a HubSpot ticket
    assert not crit.matches("pipedrive", "URGENT")
    assert not crit.matches("salesforce", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "handover:\n  maturity:\n    user_eror_threshold: 2\n",
            ["handover.maturity.user_eror_threshold", "unknown key", "user_error_threshold"],
            id="unknown-key",
        ),
        pytest.param(
            "handover:\n  maturity:\n    user_error_threshold: two\n",
            ["handover.maturity.user_error_threshold", "whole number", "'two'"],
            id="wrong-type",
        ),
        pytest.param(
            "handover:\n  maturity:\n    user_error_threshold: true\n",
            ["handover.maturity.user_error_threshold", "whole number"],
            id="bool-is-not-a-number",
        ),
        pytest.param(
            "handover:\n  maturity:\n    user_error_window_days: 0\n",
            ["handover.maturity.user_error_window_days", "out of range", "1 to 3650"],
            id="out-of-range",
        ),
        pytest.param(
            "handover:\n  rule: calendar\n",
            [
                "handover.rule",
                "'calendar'",
                "calendar_after_contract, calendar_after_go_live, maturity",
            ],
            id="unknown-rule-kind",
        ),
        pytest.param(
            "kpis:\n  late_stages:\n    salesforce: Negotiation/Review\n",
            ["kpis.late_stages.salesforce", "expected a list"],
            id="scalar-instead-of-list",
        ),
        pytest.param(
            "kpis:\n  business_hours:\n    weekdays: [monday]\n",
            ["kpis.business_hours.weekdays[0]", "'monday'", "mon, tue"],
            id="unknown-list-value",
        ),
        pytest.param(
            "kpis:\n  business_hours:\n    timezone: Europe/Berlinn\n",
            ["kpis.business_hours.timezone", "unknown time zone", "IANA"],
            id="unknown-time-zone",
        ),
        pytest.param(
            "kpis:\n  business_hours:\n    start_hour: 18\n    end_hour: 9\n",
            ["kpis.business_hours.end_hour", "not after start_hour"],
            id="cross-field",
        ),
        pytest.param(
            "kpis:\n  health:\n    weights: {tickets: 0, usage: 0, contact_recency: 0, satisfaction: 0}\n",
            ["kpis.health.weights", "all weights are 0"],
            id="all-weights-zero",
        ),
        pytest.param(
            "handover:\n  zone: {earliest_days: 130, latest_days: 120}\n",
            ["handover.zone.latest_days", "before earliest_days 130", "Fix:"],
            id="zone-ends-before-it-starts",
        ),
        pytest.param(
            "handover:\n  zone: {anchor: signature}\n",
            ["handover.zone.anchor", "'signature'", "go_live, contract"],
            id="unknown-zone-anchor",
        ),
        pytest.param(
            "handover:\n  zone: {latest_days: 0}\n",
            ["handover.zone.latest_days", "out of range", "1 to 3650"],
            id="zone-latest-zero",
        ),
        pytest.param(
            "handover:\n  segments:\n    - {name: SMB, when: {}}\n",
            ["handover.segments[0].when", "no condition", "employees_min"],
            id="segment-without-condition",
        ),
        pytest.param(
            "handover:\n  segments:\n    - {when: {employees_max: 50}}\n",
            ["handover.segments[0].name", "missing", "name: SMB"],
            id="segment-without-name",
        ),
        pytest.param(
            "handover:\n  segments:\n    - {name: A, when: {industries: [X]}}\n"
            "    - {name: a, when: {industries: [Y]}}\n",
            ["handover.segments[1].name", "used twice"],
            id="segment-name-twice",
        ),
        pytest.param(
            "handover:\n  segments:\n    - {name: A, when: {employees_min: 9, employees_max: 5}}\n",
            ["handover.segments[0].when.employees_max", "below employees_min 9", "swap"],
            id="segment-size-range-inverted",
        ),
        pytest.param(
            "handover:\n  segments:\n    - {name: A, when: {owner_team: [X]}, rule: maturty}\n",
            [
                "handover.segments[0].when.owner_team: unknown key",
                "owner_teams",
                "handover.segments[0].rule: unknown value 'maturty'",
            ],
            id="segment-typos",
        ),
        pytest.param(
            "handover:\n  segments:\n    - {name: A, when: {industries: [X]}, "
            "zone: {earliest_days: 90, latest_days: 60}}\n",
            ["handover.segments[0].zone.latest_days", "before earliest_days 90"],
            id="segment-zone-inverted",
        ),
        pytest.param(
            "handover:\n  - maturity\n",
            ["handover", "expected a mapping"],
            id="list-instead-of-mapping",
        ),
        pytest.param(
            "- just\n- a list\n",
            ["the top level", "expected a mapping"],
            id="top-level-not-a-mapping",
        ),
    ],
)
def test_each_error_class_names_the_key(tmp_path: Path, text: str, expected: list[str]) -> None:
    with pytest.raises(RulesError) as info:
        load_rules(write(tmp_path, text))
    message = str(info.value)
    for part in expected:
        assert part in message
    assert "rules.yaml" in message  # which file


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(
            {
                "handover": {"rule": "magic", "maturity": {"onboarding_required": "yes"}},
                "kpis": {"stale_deal_days": -5},
            }
        )
    message = str(info.value)
    assert "3 problem(s)" in message
    for key in ("handover.rule", "handover.maturity.onboarding_required", "kpis.stale_deal_days"):
        assert key in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"not valid YAML at line 3"):
        load_rules(write(tmp_path, "handover:\n  rule: maturity\n bad: indent\nkpis: {}\n"))


def test_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "absent.yaml")


def test_rules_are_immutable() -> None:
    rules = HubRules()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.kpis.stale_deal_days = 1  # type: ignore[misc]
