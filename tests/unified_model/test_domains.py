"""Domains, emails and company names normalise to the keys identity resolution compares: the same
company typed differently yields the same key, and different companies (or free-mail, or bare
public suffixes) never do."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unified_model import domains
from unified_model.domains import (
    city_key,
    contact_work_domain,
    domain_brand,
    domains_conflict,
    email_domain,
    is_free_mail,
    name_tokens,
    normalize_city,
    normalize_company_name,
    normalize_country,
    normalize_email,
    registrable_domain,
    work_email_domain,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://WWW.Acme.co.uk/en?x=1", "acme.co.uk"),
        ("acme.com", "acme.com"),
        ("ACME.COM.", "acme.com"),
        ("https://www.acme.com:8443/path#frag", "acme.com"),
        ("  www.acme.com/  ", "acme.com"),
        ("shop.eu.acme.com", "acme.com"),
        ("//acme.io", "acme.io"),
        ("https://user:secret@acme.io/login", "acme.io"),
        ("mailto:jane@acme.de", "acme.de"),
        ("jane@mail.acme.co.uk", "acme.co.uk"),
        ("www.acme.org.uk", "acme.org.uk"),
        ("research.ox.ac.uk", "ox.ac.uk"),
        ("https://acme.com.au", "acme.com.au"),
        ("www.acme.net.au", "acme.net.au"),
        ("acme.co.nz", "acme.co.nz"),
        ("www.toyota.co.jp", "toyota.co.jp"),
        ("shop.acme.co.za", "acme.co.za"),
        ("acme.com.br/pt", "acme.com.br"),
        ("acme.com.mx", "acme.com.mx"),
        ("www.acme.co.in", "acme.co.in"),
        ("acme.com.cn", "acme.com.cn"),
        ("acme.com.sg", "acme.com.sg"),
        ("www.samsung.co.kr", "samsung.co.kr"),
        ("xn--mller-kva.de", "müller.de"),
        ("https://www.MÜLLER.de/kontakt", "müller.de"),
        ("bücher.example.at", "example.at"),
        ("acme.github.io", "acme.github.io"),
        ("beta.myshopify.com", "beta.myshopify.com"),
        ("co.uk", None),
        ("www.co.uk", None),
        ("192.168.1.10", None),
        ("http://[::1]:8080/", None),
        ("localhost", None),
        ("acme", None),
        ("", None),
        (None, None),
        ("not a url at all", None),
    ],
)
def test_registrable_domain(raw: str | None, expected: str | None) -> None:
    assert registrable_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Acme.com", "jane.doe@acme.com"),
        ("  <jane@acme.com> ", "jane@acme.com"),
        ("Jane Doe <Jane@ACME.com>", "jane@acme.com"),
        ("mailto:jane@acme.com", "jane@acme.com"),
        ("j.a.n.e+news@googlemail.com", "jane@gmail.com"),
        ("Jane+crm@acme.com", "jane+crm@acme.com"),
        ("jane@xn--mller-kva.de", "jane@müller.de"),
        ("jane@", None),
        ("not-an-email", None),
        ("a@b@c.com", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("domain", "free"),
    [
        ("gmail.com", True),
        ("jane@googlemail.com", True),
        ("hotmail.co.uk", True),
        ("hotmail.de", True),
        ("yahoo.co.jp", True),
        ("mail.yahoo.com", True),
        ("gmx.net", True),
        ("web.de", True),
        ("t-online.de", True),
        ("proton.me", True),
        ("yandex.ru", True),
        ("qq.com", True),
        ("163.com", True),
        ("icloud.com", True),
        ("acme.com", False),
        ("acme.co.uk", False),
        ("gmailer.com", False),
        (None, False),
    ],
)
def test_is_free_mail(domain: str | None, free: bool) -> None:
    assert is_free_mail(domain) is free


def test_email_domain_and_work_domain() -> None:
    assert email_domain("Jane@Sales.Acme.co.uk") == "acme.co.uk"
    assert email_domain("jane@gmail.com") == "gmail.com"
    assert work_email_domain("jane@gmail.com") is None
    assert work_email_domain("jane@acme.fi") == "acme.fi"
    assert email_domain("broken") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACME, Inc.", "acme"),
        ("Acme Incorporated", "acme"),
        ("The Acme Company", "acme"),
        ("Acme Corp.", "acme"),
        ("Acme LLC", "acme"),
        ("Acme Ltd", "acme"),
        ("Acme Limited", "acme"),
        ("Acme Pty Ltd", "acme"),
        ("Acme PLC", "acme"),
        ("Müller GmbH & Co. KG", "muller"),
        ("Mueller AG", "mueller"),
        ("Volvo AB (publ)", "volvo"),
        ("Equinor ASA", "equinor"),
        ("Nokia Oyj", "nokia"),
        ("Kone Oy", "kone"),
        ("Société Générale S.A.", "societe generale"),
        ("Renault SAS", "renault"),
        ("Boulangerie Dupont SARL", "boulangerie dupont"),
        ("Ferrari S.p.A.", "ferrari"),
        ("Barilla SpA", "barilla"),
        ("Pirelli S.r.l.", "pirelli"),
        ("Philips N.V.", "philips"),
        ("Heineken B.V.", "heineken"),
        ("Cemex S.A. de C.V.", "cemex"),
        ("Pixellab & Partner A/S", "pixellab and partner"),
        ("Maersk A/S", "maersk"),
        ("Copperstream Energy Aktiebolag", "copperstream energy"),
        ("Novo Aktieselskab", "novo"),
        ("Kone Julkinen Osakeyhtiö", "kone"),
        ("Sony Kabushiki Kaisha", "sony"),
        ("Acme Gesellschaft mit beschränkter Haftung", "acme"),
        ("Inditex Sociedad Anónima", "inditex"),
        ("Firma Sp. z o.o.", "firma"),
        ("Sony K.K.", "sony"),
        ("Acme Group", "acme"),
        ("Procter & Gamble Co.", "procter and gamble"),
        ("O'Reilly Media, Inc.", "oreilly media"),
        ("Škoda Auto a.s.", "skoda auto"),
        ("Straße & Söhne GmbH", "strasse and sohne"),
        ("Company", "company"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_company_name(raw: str | None, expected: str) -> None:
    assert normalize_company_name(raw) == expected


def test_spellings_of_one_company_meet() -> None:
    spellings = ["Müller GmbH", "MULLER GMBH", "Muller", "Müller GmbH & Co. KG", "müller, gmbh."]
    assert len({normalize_company_name(s) for s in spellings}) == 1


def test_name_tokens_drop_joiners_and_duplicates() -> None:
    assert name_tokens("The Bank of Acme & Acme Ltd") == ["bank", "acme"]
    assert name_tokens("procter and gamble", normalized=True) == ["procter", "gamble"]
    assert name_tokens(None) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("USA", "us"),
        ("United States", "us"),
        ("U.S.A.", "us"),
        ("uk", "gb"),
        ("United Kingdom", "gb"),
        ("Deutschland", "de"),
        ("Germany", "de"),
        ("DE", "de"),
        ("Österreich", "at"),
        ("Atlantis", "atlantis"),
        ("", None),
        (None, None),
    ],
)
def test_normalize_country(raw: str | None, expected: str | None) -> None:
    assert normalize_country(raw) == expected


def test_normalize_city() -> None:
    assert normalize_city("São Paulo") == normalize_city("sao paulo") == "sao paulo"
    assert normalize_city("  ") is None


@pytest.mark.parametrize(
    "spellings",
    [
        ("München", "Munich", "Muenchen", "MUNCHEN"),
        ("Köln", "Cologne", "Koeln"),
        ("Düsseldorf", "Duesseldorf", "dusseldorf"),
        ("Zürich", "Zuerich", "Zurich"),
        ("Göteborg", "Gothenburg", "Goeteborg"),
        ("Århus", "Aarhus"),
        ("Den Haag", "The Hague", "'s-Gravenhage"),
        ("Frankfurt am Main", "Frankfurt", "Frankfurt/Main"),
        ("Genève", "Geneva", "Genf"),
        ("Montréal", "Montreal"),
    ],
)
def test_city_key_meets_exonyms_and_transliterations(spellings: tuple[str, ...]) -> None:
    assert len({city_key(s) for s in spellings}) == 1


def test_city_key_keeps_different_cities_apart() -> None:
    cities = ["Hamburg", "Berlin", "München", "Nürnberg", "Köln", "Wien", "Paris", "Aarau"]
    assert len({city_key(c) for c in cities}) == len(cities)
    assert city_key("  ") is None and city_key(None) is None


@pytest.mark.parametrize(
    ("raw", "brand"),
    [
        ("https://www.acme-software.co.uk/en", "acmesoftware"),
        ("acme.de", "acme"),
        ("jane@sales.acme.com", "acme"),
        ("co.uk", None),
        (None, None),
    ],
)
def test_domain_brand(raw: str | None, brand: str | None) -> None:
    assert domain_brand(raw) == brand


@pytest.mark.parametrize(
    ("left", "right", "conflict"),
    [
        ("acme.de", "acme.com", False),  # country sites of one brand
        ("acme-group.com", "acmegroup.io", False),
        ("acme.com", None, False),  # unknown: no evidence
        ("alpenway-networks.fr", "alpenbaynetworks.fr", True),
        ("acme.com", "beta.com", True),
        ("acme.com", "acme-group.com", True),  # a holding and its firm, maybe: a person decides
    ],
)
def test_domains_conflict(left: str | None, right: str | None, conflict: bool) -> None:
    assert domains_conflict(left, right) is conflict
    assert domains_conflict(right, left) is conflict


_ADDRESS = st.from_regex(
    r"\A[ <]{0,2}(mailto:)?[A-Za-z0-9.+_\-ÄäÖöß]{1,12}@([A-Za-z0-9\-äöüÅ]{1,10}\.){1,3}"
    r"(com|de|co\.uk|fi|io|example|net|CO\.UK|GOOGLEMAIL\.COM|gmail\.com)[> ?]{0,2}\Z",
    fullmatch=True,
)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(_ADDRESS, st.text(max_size=30)))
def test_contact_work_domain_of_a_stored_address_equals_the_full_parse(raw: str) -> None:
    """The fast path (host of the stored normalised address) gives what parsing the address
    again gives, for addresses of every shape and for text that is none."""
    normalized = normalize_email(raw)
    assert contact_work_domain(normalized, raw) == work_email_domain(normalized or raw)
    if normalized is not None:
        assert normalize_email(normalized) == normalized  # what the fast path relies on


def test_contact_work_domain_examples() -> None:
    assert contact_work_domain("jane@mail.acme.co.uk", None) == "acme.co.uk"
    assert contact_work_domain("jane@gmail.com", None) is None  # free mail
    assert contact_work_domain(None, "Jane <JANE@Acme.DE>") == "acme.de"
    assert contact_work_domain(None, None) is None


_LABEL = st.from_regex(r"(xn--)?[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_WEBSITE = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["", "http:", "https:", "HTTPS:", "ftp:", "mailto:", "x1+.-:", "1x:"]),
        st.sampled_from(["//", "", "/", "///"]),
        st.sampled_from(["", "user@", "u:p@"]),
        st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
        st.sampled_from(["", ".", ".."]),
        st.sampled_from(["", ":", ":8443", ":abc", ":80:81"]),
        st.sampled_from(["", "/", "/en?x=1", "?q", "#f", "/@me", "\\x", "/a b", "/ü", "/\tx"]),
    ),
)


def _parsed_host(raw: str) -> str | None:
    """``normalize_host`` without its web-address shortcut: the plain-host case, else the
    full parse (what it gave before the shortcut)."""
    text = unicodedata.normalize("NFC", raw).strip().strip("<>\"'").strip()
    if not text:
        return None
    if domains._PLAIN_HOST_RE.fullmatch(text) and "xn--" not in text.lower():
        return text.lower().rstrip(".")
    return domains._url_host(text)


@settings(max_examples=1500, deadline=None)
@given(raw=st.one_of(_WEBSITE, st.text(max_size=40)))
def test_a_typed_website_gives_the_host_the_full_parse_gives(raw: str) -> None:
    """The shortcut for web addresses with a plain host gives what parsing them gives, for
    schemes, credentials, ports, paths, trailing dots and punycode of every shape."""
    assert domains.normalize_host(raw) == _parsed_host(raw)


def test_typed_website_examples() -> None:
    assert domains.normalize_host("HTTPS://WWW.Acme.co.uk./en?x=1") == "www.acme.co.uk"
    assert domains.normalize_host("//shop.acme.com:8443") == "shop.acme.com"
    assert domains.normalize_host("https://jane@acme.com/") == "acme.com"  # the parse's path
    assert domains.normalize_host("https://xn--mnchen-3ya.de/") == "münchen.de"
    assert registrable_domain("http://www.acme.com/about") == "acme.com"
