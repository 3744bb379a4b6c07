"""The connectors read three real response shapes right, and every command a message recommends exists.

Contract checked: HubSpot email address properties in display-name and list forms
(``Jane Doe<jane@example.com>; b@y.io``) become bare addresses, so erasing a person by address
removes their emails and blocks them from coming back; Salesforce's write-side error "No such
column 'X' on sobject of type Bar" names field X on object Bar (not "of"); HubSpot's
PROPERTY_DOESNT_EXIST on write recommends `crmhub fields ensure`; and every ``crmhub ...``
command recommended by a string in ``connectors/``, ``unified_model/``, ``assets/`` or ``crmhub/``
is a command of the CLI parser.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import ago, connector, drain, sandbox_fixture, seed  # noqa: F401

from connectors.errors import MappingError
from connectors.hubspot.mapping import address, addresses
from connectors.records import EmailRecord, FieldUpdate, HubFieldSpec
from connectors.salesforce.client import InvalidFieldError, SalesforceClient
from crmhub.cli import build_parser
from sandbox.runner import Sandbox
from sandbox.state import SF
from tests.connectors.salesforce_support import insert, make_config
from unified_model.erasure import erase_email
from unified_model.store import HubStore

ROOT = Path(__file__).resolve().parents[2]


# ---- (a) HubSpot email addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("person@example.com", ("person@example.com",)),
        ("First Last<person@example.com>", ("person@example.com",)),
        ("First Last <person@example.com>", ("person@example.com",)),
        ('"Last, First" <person@example.com>; b@y.io', ("person@example.com", "b@y.io")),
        ("A <a@x.io>;B <b@y.io>, c@z.io", ("a@x.io", "b@y.io", "c@z.io")),
        ("a@x.io;b@y.io", ("a@x.io", "b@y.io")),
        ("a@x.io; a@x.io", ("a@x.io",)),
        ("", ()),
        (None, ()),
    ],
)
def test_email_address_properties_keep_only_the_addresses(
    raw: str | None, expected: tuple[str, ...]
) -> None:
    assert addresses(raw) == expected
    assert address(raw) == (expected[0] if expected else None)


def test_erasing_a_person_by_address_removes_display_name_form_emails(
    sb: Sandbox, tmp_path: Path
) -> None:
    """Read through the real SDK from the sandbox, stored, then erased by the bare address."""
    t = ago(sb, 3600).replace(microsecond=0)
    props = {
        "hs_timestamp": "2024-05-02T08:00:00.000Z",
        "hs_email_direction": "INCOMING_EMAIL",
        "hs_email_subject": "Invoice question",
    }
    seed(
        sb.state,
        "emails",
        {
            **props,
            "hs_email_from_email": "Pia Virtanen<pia@acme.fi>",
            "hs_email_to_email": "Account Manager <am@us.io>",
        },
        rid="601",
        created=t,
    )
    seed(
        sb.state,
        "emails",
        {
            **props,
            "hs_email_direction": "EMAIL",
            "hs_email_from_email": "am@us.io",
            "hs_email_to_email": '"Virtanen, Pia" <Pia@Acme.fi>; Olli <olli@beta.se>',
        },
        rid="602",
        created=t,
    )
    records, _, _ = drain(connector(sb).read("email", None))
    emails = {r.source_id: r for r in records if isinstance(r, EmailRecord)}
    assert emails["601"].from_address == "pia@acme.fi"
    assert emails["601"].to_addresses == ("am@us.io",)
    assert emails["602"].to_addresses == ("Pia@Acme.fi", "olli@beta.se")

    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    try:
        store.upsert_records("email", list(emails.values()))
        assert erase_email(store, "pia@acme.fi")["emails"] == 2
        # the erasure block: the same emails read again are not stored again
        store.upsert_records("email", list(emails.values()))
        from unified_model import tables as t_

        assert store.count(t_.Email) == 0
    finally:
        store.dispose()


# ---- (b) Salesforce write-side INVALID_FIELD --------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field", "obj"),
    [
        ("No such column 'foo' on sobject of type Bar", "foo", "Bar"),
        ("No such column 'Foo__c' on entity 'Account'. If you are attempting", "Foo__c", "Account"),
        ("No such column 'Foo__c' on entity Account", "Foo__c", "Account"),
    ],
)
def test_invalid_field_errors_name_the_field_and_the_object(
    sb: Sandbox, message: str, field: str, obj: str
) -> None:
    client = SalesforceClient(make_config(sb.info))
    try:
        exc = SalesforceMalformedRequest(
            "https://x/services/data/v59.0/sobjects/Bar/1",
            400,
            "Bar",
            [{"message": message, "errorCode": "INVALID_FIELD", "fields": []}],
        )
        out = client.translate(exc)
    finally:
        client.close()
    assert isinstance(out, InvalidFieldError)
    assert (out.field_name, out.object_name) == (field, obj)
    assert str(out) == f"Salesforce does not know the field {field} on {obj} (INVALID_FIELD)."


def test_a_write_to_an_unknown_salesforce_field_names_it_on_its_object(sb: Sandbox) -> None:
    """The sandbox sends the write-side wording; the connector's error must read it."""
    rid = insert(sb.state, "Account", {"Name": "Acme"}, sb.state.now())
    assert sb.state.get(SF, "Account", rid) is not None
    client = SalesforceClient(make_config(sb.info))
    try:
        with pytest.raises(InvalidFieldError) as caught:
            client.call("Account", lambda sf: sf.Account.update(rid, {"Nope__c": "x"}))
    finally:
        client.close()
    assert (caught.value.field_name, caught.value.object_name) == ("Nope__c", "Account")
    assert " on of " not in str(caught.value)


# ---- (c) recommended commands exist ----------------------------------------------------------


def test_a_missing_hubspot_property_on_write_recommends_fields_ensure(sb: Sandbox) -> None:
    seed(sb.state, "companies", {"name": "c1"}, rid="1", created=ago(sb, 3600))
    spec = HubFieldSpec("health_score", "Health score", "number")
    conn = connector(sb, hub_fields=(spec,))
    with pytest.raises(MappingError) as caught:  # the property was never created
        conn.write([FieldUpdate("1", {"health_score": "1"})])
    assert "`crmhub fields ensure`" in str(caught.value)
    assert "provision`" not in str(caught.value)


#: A recommended command: ``crmhub`` and its words right after a backtick, quote, bracket or "run".
_RECOMMENDED = re.compile(r"(?:[`'\"(]|\brun\s+)(crmhub(?:[ \t]+[a-z][\w-]*)+)")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def recommended_commands(source: str) -> list[list[str]]:
    """The ``crmhub`` commands named by the non-docstring strings of one module."""
    tree = ast.parse(source)
    skip = _docstring_nodes(tree)
    out: list[list[str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for m in _RECOMMENDED.finditer(node.value):
                out.append(m.group(1).split()[1:])
    return out


def resolves(parser: argparse.ArgumentParser, words: list[str]) -> bool:
    """Whether the leading words name a (sub)command; words after a leaf command are its args."""
    current = parser
    for word in words:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return True
        if word not in subs[0].choices:
            return False
        current = subs[0].choices[word]
    subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
    return not subs or not subs[0].required


def test_the_scanner_finds_recommendations_and_flags_missing_commands() -> None:
    parser = build_parser()
    found = recommended_commands("x = \"run `crmhub provision` or 'crmhub fields ensure'\"")
    assert found == [["provision"], ["fields", "ensure"]]
    assert [resolves(parser, w) for w in found] == [False, True]
    assert not resolves(parser, ["fields"])  # a group without its required subcommand
    assert not resolves(parser, ["fields", "create"])


def test_every_command_a_message_recommends_exists_in_the_cli() -> None:
    parser = build_parser()
    seen: dict[str, list[str]] = {}
    for folder in ("connectors", "unified_model", "assets", "crmhub"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for words in recommended_commands(path.read_text(encoding="utf-8")):
                seen[" ".join(words)] = [*seen.get(" ".join(words), []), str(path.name)]
    missing = {cmd: where for cmd, where in seen.items() if not resolves(parser, cmd.split())}
    assert missing == {}
    assert "fields ensure" in seen  # the HubSpot writer's recommendation is among those checked
