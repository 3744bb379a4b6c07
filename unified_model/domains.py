"""Normalising the evidence identity resolution compares: web domains, emails, company names.

Why: the same customer is typed differently in each CRM. A seller enters ``http://WWW.Acme.co.uk/en``
in Salesforce, marketing's HubSpot company says ``acme.co.uk``; one CRM says "Müller GmbH & Co. KG",
the other "Muller". Matching on raw strings misses these, matching on naive ones merges the wrong
customers (``co.uk`` is not a company; every ``gmail.com`` contact is not one employer). The
functions here turn such values into comparable keys, offline and deterministically:

- ``registrable_domain`` reduces a URL or host to the domain a company registers (eTLD+1), with
  a small built-in list of multi-label public suffixes (country second levels such as ``co.uk`` and
  hosting platforms such as ``github.io``) instead of a downloaded public suffix list: the hub must
  run without network access, and the list only has to be right for business websites.
- ``email_domain``/``is_free_mail``: a person's work email says where they work, unless it is a
  free-mail address.
- ``normalize_company_name`` strips case, accents, punctuation and legal forms so that fuzzy name
  matching compares the brand, and ``name_tokens`` gives the tokens used for blocking.
- ``normalize_country``/``normalize_city``/``city_key`` make location agreement checks robust to
  "USA" vs "United States" vs "US", and "Munich" vs "München" vs "Muenchen".
- ``domain_brand``/``domains_conflict`` tell a company's country sites (``acme.de``/``acme.com``)
  from two companies' websites, so that a website can veto a similar name.

Internationalised domains are kept in their Unicode form (``müller.de``; punycode input
``xn--mller-kva.de`` is decoded), so a key is readable in the golden record and both spellings meet.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

# --------------------------------------------------------------------------------------------
# Public suffixes
# --------------------------------------------------------------------------------------------

#: Multi-label public suffixes under which companies register their domain. Single-label TLDs
#: (``com``, ``de``, ``fi``…) need no list: anything not listed here is a one-label suffix.
#: Country second levels are grouped per country; the generic second-level words are combined
#: with the country codes that use them.
_SLD_WORDS_BY_COUNTRY: dict[str, tuple[str, ...]] = {
    "uk": ("co", "org", "ac", "gov", "ltd", "plc", "me", "net", "sch", "nhs", "police", "mod"),
    "au": ("com", "net", "org", "edu", "gov", "asn", "id"),
    "nz": ("co", "org", "net", "ac", "govt", "geek", "gen", "kiwi", "maori", "school"),
    "jp": ("co", "ne", "or", "ac", "go", "gr", "ad", "ed", "lg"),
    "za": ("co", "org", "web", "gov", "ac", "net", "nom"),
    "br": ("com", "net", "org", "gov", "edu", "art", "eng", "ind", "inf", "adv"),
    "mx": ("com", "org", "gob", "net", "edu"),
    "in": ("co", "net", "org", "firm", "gen", "ind", "ac", "gov", "edu", "res"),
    "cn": ("com", "net", "org", "gov", "edu", "ac"),
    "sg": ("com", "net", "org", "edu", "gov", "per"),
    "kr": ("co", "or", "ne", "ac", "go", "re", "pe"),
    "hk": ("com", "org", "net", "edu", "gov", "idv"),
    "tw": ("com", "org", "net", "edu", "gov", "idv"),
    "il": ("co", "org", "net", "ac", "gov", "muni"),
    "tr": ("com", "net", "org", "gen", "biz", "edu", "gov", "web", "av", "bel"),
    "ar": ("com", "net", "org", "gob", "edu", "int"),
    "co": ("com", "net", "org", "gov", "edu", "nom"),
    "pe": ("com", "net", "org", "gob", "edu", "nom"),
    "cl": ("gob", "gov", "mil"),
    "ve": ("com", "net", "org", "gob", "edu", "co"),
    "ec": ("com", "net", "org", "gob", "edu", "fin"),
    "uy": ("com", "net", "org", "gub", "edu"),
    "py": ("com", "net", "org", "gov", "edu", "coop"),
    "bo": ("com", "net", "org", "gob", "edu"),
    "do": ("com", "net", "org", "gob", "edu"),
    "gt": ("com", "net", "org", "gob", "edu"),
    "pa": ("com", "net", "org", "gob", "edu"),
    "cr": ("co", "or", "fi", "go", "ac", "ed"),
    "sv": ("com", "org", "gob", "edu"),
    "id": ("co", "or", "ac", "go", "web", "net", "my", "sch"),
    "my": ("com", "net", "org", "gov", "edu", "name"),
    "ph": ("com", "net", "org", "gov", "edu"),
    "pk": ("com", "net", "org", "gov", "edu"),
    "vn": ("com", "net", "org", "gov", "edu"),
    "th": ("co", "in", "ac", "go", "or", "net"),
    "eg": ("com", "net", "org", "gov", "edu"),
    "sa": ("com", "net", "org", "gov", "edu"),
    "ae": ("co", "net", "org", "gov", "ac"),
    "ua": ("com", "net", "org", "gov", "edu", "in"),
    "ru": ("com", "net", "org", "msk", "spb"),
    "pl": ("com", "net", "org", "gov", "edu", "waw", "info", "biz"),
    "at": ("co", "or", "ac", "gv"),
    "hu": ("co", "org", "gov", "info"),
    "gr": ("com", "net", "org", "gov", "edu"),
    "cy": ("com", "net", "org", "gov", "ac"),
    "mt": ("com", "net", "org", "gov", "edu"),
    "ng": ("com", "net", "org", "gov", "edu"),
    "ke": ("co", "or", "ne", "go", "ac"),
    "tz": ("co", "or", "ne", "go", "ac"),
    "ug": ("co", "or", "ne", "go", "ac"),
    "zw": ("co", "org", "gov", "ac"),
    "gh": ("com", "org", "gov", "edu"),
    "ma": ("co", "net", "org", "gov", "ac"),
    "lk": ("com", "net", "org", "gov", "edu"),
    "bd": ("com", "net", "org", "gov", "edu"),
    "np": ("com", "net", "org", "gov", "edu"),
    "qa": ("com", "net", "org", "gov", "edu"),
    "kw": ("com", "net", "org", "gov", "edu"),
    "bh": ("com", "net", "org", "gov", "edu"),
    "om": ("com", "net", "org", "gov", "co"),
    "jo": ("com", "net", "org", "gov", "edu"),
    "lb": ("com", "net", "org", "gov", "edu"),
    "ca": (
        "ab",
        "bc",
        "mb",
        "nb",
        "nf",
        "nl",
        "ns",
        "nt",
        "nu",
        "on",
        "pe",
        "qc",
        "sk",
        "yk",
        "gc",
    ),
    "us": ("ny", "ca", "tx", "fl", "wa", "ma", "il", "dni", "fed", "isa", "nsn", "k12"),
}

#: Hosting platforms: each customer gets its own subdomain, which is then the registrable
#: domain (so two shops on ``myshopify.com`` are not merged into one customer).
_PRIVATE_SUFFIXES: frozenset[str] = frozenset(
    {
        "github.io",
        "gitlab.io",
        "herokuapp.com",
        "myshopify.com",
        "wixsite.com",
        "blogspot.com",
        "wordpress.com",
        "squarespace.com",
        "webflow.io",
        "netlify.app",
        "vercel.app",
        "pages.dev",
        "workers.dev",
        "appspot.com",
        "azurewebsites.net",
        "cloudfront.net",
        "web.app",
        "firebaseapp.com",
        "hs-sites.com",
        "my.site.com",
        "my.salesforce.com",
        "force.com",
        "sharepoint.com",
        "carrd.co",
        "notion.site",
    }
)

PUBLIC_SUFFIXES: frozenset[str] = frozenset(
    {f"{word}.{cc}" for cc, words in _SLD_WORDS_BY_COUNTRY.items() for word in words}
    | _PRIVATE_SUFFIXES
)
_MAX_SUFFIX_LABELS = max(s.count(".") + 1 for s in PUBLIC_SUFFIXES)

_PLAIN_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?"
)
#: a web address whose host is a plain ASCII name: ``https://www.acme.com/en?x=1``,
#: ``//acme.com:8443``. Its host is what the URL parse gives (``_url_host``).
_PLAIN_URL_RE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?)"
    r"(?::[0-9]*)?(?:[/?#][^\t\r\n]*)?"
)
_WWW_RE = re.compile(r"^www\d*$")
_LABEL_RE = re.compile(r"^[^\W_](?:[\w-]{0,61}[^\W_])?$")


def _decode_label(label: str) -> str:
    """Punycode labels (``xn--…``) to Unicode, so both spellings of an IDN compare equal."""
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            return label
    return label


def normalize_host(url_or_host: str | None) -> str | None:
    """The lower-case Unicode host of a URL, email address or bare host, or None if there is none.

    Accepts what people type into a website field: with or without scheme, ``www.``, port, path,
    query, fragment, credentials, trailing dots, surrounding whitespace. IP addresses and
    single-label names (``localhost``) are not company domains and give None.
    """
    if url_or_host is None:
        return None
    text = unicodedata.normalize("NFC", str(url_or_host)).strip().strip("<>\"'").strip()
    if not text:
        return None
    if _PLAIN_HOST_RE.fullmatch(text) and "xn--" not in text.lower():
        return text.lower().rstrip(".")  # the common case, without URL parsing
    if (url := _PLAIN_URL_RE.fullmatch(text)) and "xn--" not in (host := url[1].lower()):
        # a website as typed, with scheme and path: the same host as the parse below (a third
        # of the accounts' websites on ``large``, parsed anew by every unify process)
        return host.rstrip(".")
    return _url_host(text)


def _url_host(text: str) -> str | None:
    """``normalize_host`` of a stripped, NFC text that is not a plain host name: parsed as
    an email address or a URL (``urlsplit``), each label decoded and checked."""
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if "@" in text and "://" not in text and "/" not in text.split("@", 1)[0]:
        text = text.rsplit("@", 1)[1]  # an email address: its domain is the host
    if "://" not in text:
        text = "//" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.strip().rstrip(".").replace("\u3002", ".")  # ideographic full stop
    labels = [_decode_label(label) for label in host.casefold().split(".")]
    labels = [unicodedata.normalize("NFC", label) for label in labels]
    host = ".".join(labels)
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None
    return host


@functools.lru_cache(maxsize=1 << 18)
def registrable_domain(url_or_host: str | None) -> str | None:
    """The domain a company registers (eTLD+1) behind a URL, host or email, or None.

    ``http://WWW.Acme.co.uk/en?x=1`` → ``acme.co.uk``; ``shop.acme.com:8443`` → ``acme.com``.
    A bare public suffix (``co.uk``) is not a company's domain and gives None.

    Cached (a pure function): at 100k customers identity resolution and contact linking ask it
    for the websites of 145k accounts and the hosts of 780k contact emails, a few hundred
    thousand distinct values; 65,536 entries kept missing (5 s of a 1 % run's unify).
    """
    host = normalize_host(url_or_host)
    if host is None:
        return None
    labels = host.split(".")
    if len(labels) > 2 and _WWW_RE.match(labels[0]):
        labels = labels[1:]  # "www.co.uk" is a typo'd suffix, not a company called "www"
    # Longest listed multi-label suffix wins (``my.salesforce.com`` over ``salesforce.com``).
    for n in range(min(_MAX_SUFFIX_LABELS, len(labels)), 1, -1):
        suffix = ".".join(labels[-n:])
        if suffix in PUBLIC_SUFFIXES:
            if len(labels) == n:
                return None
            return ".".join(labels[-(n + 1) :])
    return ".".join(labels[-2:])


def domain_brand(domain: str | None) -> str | None:
    """The brand part of a registrable domain: its first label without hyphens, or None.

    ``acme-software.co.uk`` → ``acmesoftware``; ``acme.de`` and ``acme.com`` share ``acme``. Why:
    one company runs country sites and old domains (``acme.de``, ``acme.com``), so two different
    domains are not always two companies; two different brands are.
    """
    registrable = registrable_domain(domain)
    if registrable is None:
        return None
    return registrable.split(".", 1)[0].replace("-", "") or None


def domains_conflict(left: str | None, right: str | None) -> bool:
    """True when two domains name different brands: negative evidence against a name match.

    Not a conflict: equal brands (``acme.de`` / ``acme.com``, ``acme-group.com`` /
    ``acmegroup.io``) or an unknown side. A conflict: ``alpenway-networks.fr`` /
    ``alpenbaynetworks.fr`` (similar names on different websites are different companies), and
    also ``acme.com`` / ``acme-group.com``: "Acme" and "Acme Group" may be one company or a
    holding and its operating firm, which a person should decide rather than a name score.
    """
    a, b = domain_brand(left), domain_brand(right)
    return a is not None and b is not None and a != b


# --------------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------------

#: Free-mail providers: an address there says nothing about the employer.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "gmx.ch",
        "gmx.com",
        "web.de",
        "t-online.de",
        "freenet.de",
        "arcor.de",
        "posteo.de",
        "mailbox.org",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tuta.io",
        "fastmail.com",
        "hey.com",
        "mail.com",
        "email.com",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "rambler.ru",
        "ya.ru",
        "qq.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sohu.com",
        "aliyun.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "libero.it",
        "virgilio.it",
        "alice.it",
        "tiscali.it",
        "btinternet.com",
        "sky.com",
        "virginmedia.com",
        "ntlworld.com",
        "talktalk.net",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "cox.net",
        "charter.net",
        "bellsouth.net",
        "earthlink.net",
        "shaw.ca",
        "rogers.com",
        "sympatico.ca",
        "bigpond.com",
        "optusnet.com.au",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "onet.pl",
        "interia.pl",
        "rediffmail.com",
        "uol.com.br",
        "bol.com.br",
        "terra.com.br",
        "ziggo.nl",
        "kpnmail.nl",
        "telenet.be",
        "skynet.be",
        "bluewin.ch",
        "luukku.com",
        "suomi24.fi",
    }
)

#: Provider families with many country domains: ``hotmail.co.uk``, ``yahoo.co.jp``, ``yandex.com``.
_FREE_MAIL_FAMILIES: frozenset[str] = frozenset(
    {"hotmail", "yahoo", "ymail", "yandex", "outlook", "live", "gmx", "aol", "windowslive"}
)


@functools.lru_cache(maxsize=1 << 18)
def is_free_mail(domain_or_email: str | None) -> bool:
    """True when the domain (or the domain of an email address) belongs to a free-mail provider.

    Cached (a pure function): unify asks it of the same account domains about 380,000 times a
    run on ``large`` (the digest, the resolution and the contact votes each ask again)."""
    domain = registrable_domain(domain_or_email)
    if domain is None:
        return False
    if domain in FREE_MAIL_DOMAINS:
        return True
    return domain.split(".", 1)[0] in _FREE_MAIL_FAMILIES


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def normalize_email(email: str | None) -> str | None:
    """The comparable form of an email address, or None if it is not one.

    Lower case (mailbox names are case-insensitive in practice), display name, ``mailto:`` and
    angle brackets removed, IDN domain in Unicode form. Gmail ignores dots and ``+tags`` in the
    mailbox and treats ``googlemail.com`` as ``gmail.com``, so those are folded too; other
    providers' mailboxes are kept as typed because ``+`` and ``.`` can be significant there.
    """
    if email is None:
        return None
    text = unicodedata.normalize("NFC", str(email)).strip()
    if "<" in text and ">" in text:  # "Jane Doe <jane@acme.com>"
        text = text[text.rfind("<") + 1 : text.rfind(">")]
    text = text.strip().strip("<>\"'").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = text.split("?", 1)[0].strip()
    if not _EMAIL_RE.match(text):
        return None
    local, _, host = text.rpartition("@")
    domain = normalize_host(host)
    if domain is None or not local:
        return None
    local = local.casefold()
    if domain in _GMAIL:
        domain = "gmail.com"
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def email_domain(email: str | None) -> str | None:
    """The registrable domain of an email address (``jane@mail.acme.co.uk`` → ``acme.co.uk``)."""
    normalized = normalize_email(email)
    if normalized is None:
        return None
    return registrable_domain(normalized.rpartition("@")[2])


def work_email_domain(email: str | None) -> str | None:
    """The employer's domain an email address reveals: its domain unless it is free mail."""
    domain = email_domain(email)
    if domain is None or is_free_mail(domain):
        return None
    return domain


def contact_work_domain(email_normalized: str | None, email: str | None) -> str | None:
    """``work_email_domain(email_normalized or email)``, fast for a stored normalised address.

    Why: unify asks it of every contact twice per resolution (780,000 on ``large``), and
    re-normalising an address that ``normalize_email`` already produced (the stored
    ``email_normalized``) costs a regular expression, a host parse and an IP-address test each
    time, over hosts too many for ``registrable_domain``'s cache. Normalising is idempotent,
    so the answer depends only on the host part, cached here once per host.
    """
    if email_normalized:
        return host_work_domain(email_normalized.rpartition("@")[2])
    return work_email_domain(email)


@functools.lru_cache(maxsize=1 << 18)
def host_work_domain(host: str) -> str | None:
    """The work domain of an address at ``host`` (its part after the last ``@``), as
    ``contact_work_domain`` gives it for a stored normalised address; None for free mail."""
    domain = registrable_domain(host)
    if domain is None or is_free_mail(domain):
        return None
    return domain


# --------------------------------------------------------------------------------------------
# Company names
# --------------------------------------------------------------------------------------------

#: Legal forms (after dots are removed, so "S.A." is "sa" and "Co." is "co"), as token tuples.
#: Stripped from the end of a name, repeatedly ("GmbH & Co. KG", "Pty Ltd", "S.A. de C.V.").
_LEGAL_FORMS_SINGLE: frozenset[str] = frozenset(
    {
        # English-speaking
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lp",
        "ltd",
        "limited",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "cos",
        "pty",
        "pte",
        "pvt",
        "group",
        # German-speaking
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "kgaa",
        "ohg",
        "ug",
        "ev",
        "eg",
        "se",
        # Nordic (also spelt out: "Aktiebolag", "Aktieselskab", "Osakeyhtiö")
        "ab",
        "aktiebolag",
        "aktieselskab",
        "aksjeselskap",
        "anpartsselskab",
        "osakeyhtio",
        "publ",
        "as",
        "asa",
        "aps",
        "oy",
        "oyj",
        "ky",
        "hf",
        "ehf",
        # Romance
        "sa",
        "sas",
        "sasu",
        "sarl",
        "eurl",
        "srl",
        "srls",
        "spa",
        "sl",
        "slu",
        "ltda",
        "sab",
        "lda",
        "sca",
        "snc",
        "sccl",
        # Benelux
        "bv",
        "nv",
        "bvba",
        "vof",
        "cv",
        # Central / Eastern Europe
        "sro",
        "spzoo",
        "zrt",
        "nyrt",
        "kft",
        "doo",
        "dd",
        "ad",
        "ood",
        "eood",
        "ooo",
        "zao",
        "oao",
        "pao",
        # Asia-Pacific
        "kk",
        "gk",
        "bhd",
        "sdn",
        "tbk",
        "jsc",
    }
)
_LEGAL_FORMS_MULTI: tuple[tuple[str, ...], ...] = (
    ("sa", "de", "cv"),
    ("s", "de", "rl"),
    ("sp", "z", "oo"),
    ("s", "a", "s"),
    ("s", "a", "r", "l"),
    ("s", "r", "l"),
    ("s", "p", "a"),
    ("s", "a"),
    ("s", "l"),
    ("b", "v"),
    ("n", "v"),
    ("a", "g"),
    ("k", "k"),
    ("a", "s"),  # Danish/Norwegian "A/S" (the slash is punctuation)
    ("i", "s"),
    ("k", "s"),
    ("p", "s"),
    ("public", "limited", "company"),
    ("kabushiki", "kaisha"),
    ("godo", "kaisha"),
    ("sociedad", "anonima"),
    ("sociedad", "limitada"),
    ("societe", "anonyme"),
    ("societa", "per", "azioni"),
    ("naamloze", "vennootschap"),
    ("besloten", "vennootschap"),
    ("gesellschaft", "mit", "beschrankter", "haftung"),
    ("julkinen", "osakeyhtio"),
    ("limited", "liability", "company"),
    ("private", "limited"),
    ("and", "co"),
    ("und", "co"),
)
_LEGAL_FORMS_BY_LAST: dict[str, list[tuple[str, ...]]] = {}
for _form in sorted(_LEGAL_FORMS_MULTI, key=len, reverse=True):
    _LEGAL_FORMS_BY_LAST.setdefault(_form[-1], []).append(_form)
#: Words that only join legal forms ("GmbH & Co. KG"); dropped when a legal form follows them.
_JOINERS = frozenset({"and", "und", "de", "y", "et", "en"})
_LEADING_NOISE = frozenset({"the"})

_APOSTROPHES = str.maketrans("", "", "'’`´")
_NON_WORD = re.compile(r"[^\w]+")
_GERMAN_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ł": "l"})


def fold_text(text: str) -> str:
    """Casefold and strip accents (``Müller`` → ``muller``, ``Łódź`` → ``lodz``).

    Why strip rather than transliterate (``ü`` → ``ue``): CRMs fed by forms and imports lose
    umlauts as often as they spell them out, and the stripped form is what both spellings share
    most often; fuzzy matching absorbs the remaining ``ue``/``u`` differences.
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_GERMAN_FOLD)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _strip_legal_forms(tokens: list[str]) -> list[str]:
    """Remove legal forms (and their joiners) from the end, keeping at least one token."""
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        for form in _LEGAL_FORMS_BY_LAST.get(tokens[-1], ()):
            n = len(form)
            if len(tokens) > n and tuple(tokens[-n:]) == form:
                del tokens[-n:]
                changed = True
                break
        else:
            if tokens[-1] in _LEGAL_FORMS_SINGLE:
                tokens.pop()
                changed = True
        if changed and len(tokens) > 1 and tokens[-1] in _JOINERS:
            tokens.pop()
    return tokens


def normalize_company_name(name: str | None) -> str:
    """The brand part of a company name, for comparison: ``"Müller GmbH & Co. KG"`` → ``"muller"``.

    Casefolded, accents stripped, ``&``/``+`` read as "and", apostrophes and dots inside
    abbreviations dropped (``S.A.`` → ``sa``), other punctuation turned into spaces, a leading
    "the" and trailing legal forms of many countries removed. The empty string when nothing
    comparable is left. A name that is only a legal form ("Company") is kept as it is rather than
    emptied, so it still compares equal to itself.
    """
    if not name:
        return ""
    text = fold_text(str(name))
    text = text.replace("&", " and ").replace("+", " and ").translate(_APOSTROPHES)
    text = re.sub(r"(?<=\w)\.(?=\w)", "", text)  # "s.a" → "sa", "acme.com" → "acmecom"
    text = text.replace(".", " ")
    tokens = [t for t in _NON_WORD.sub(" ", text).replace("_", " ").split() if t]
    while len(tokens) > 1 and tokens[0] in _LEADING_NOISE:
        tokens.pop(0)
    return " ".join(_strip_legal_forms(tokens))


#: Tokens too common to block on: joining words carry no identity.
_BLOCKING_STOPWORDS = frozenset({"and", "of", "the", "de", "der", "die", "la", "le", "und", "y"})


def name_tokens(name: str | None, *, normalized: bool = False) -> list[str]:
    """Distinct tokens of the normalised name, in order, without joining words: blocking keys.

    Why separate from the normalised string: identity resolution blocks candidate pairs on
    tokens (the rarest one, the first one) so that it never compares all pairs of 200k accounts.
    ``normalized=True`` says ``name`` already is ``normalize_company_name`` output (saves work
    at scale).
    """
    text = (name or "") if normalized else normalize_company_name(name)
    seen: dict[str, None] = {}
    for token in text.split():
        if token not in _BLOCKING_STOPWORDS:
            seen.setdefault(token, None)
    return list(seen)


# --------------------------------------------------------------------------------------------
# Location
# --------------------------------------------------------------------------------------------

#: Common spellings of countries CRMs hold, to ISO 3166-1 alpha-2 (lower case).
_COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "us": ("usa", "united states", "united states of america", "america", "u s", "u s a"),
    "gb": (
        "uk",
        "united kingdom",
        "great britain",
        "britain",
        "england",
        "scotland",
        "wales",
        "northern ireland",
        "gbr",
    ),
    "de": ("germany", "deutschland", "deu", "bundesrepublik deutschland"),
    "at": ("austria", "osterreich", "aut"),
    "ch": ("switzerland", "schweiz", "suisse", "svizzera", "che"),
    "fr": ("france", "fra"),
    "it": ("italy", "italia", "ita"),
    "es": ("spain", "espana", "esp"),
    "pt": ("portugal", "prt"),
    "nl": ("netherlands", "the netherlands", "holland", "nederland", "nld"),
    "be": ("belgium", "belgie", "belgique", "bel"),
    "lu": ("luxembourg", "lux"),
    "ie": ("ireland", "eire", "irl"),
    "dk": ("denmark", "danmark", "dnk"),
    "se": ("sweden", "sverige", "swe"),
    "no": ("norway", "norge", "nor"),
    "fi": ("finland", "suomi", "fin"),
    "is": ("iceland", "island", "isl"),
    "ee": ("estonia", "eesti", "est"),
    "lv": ("latvia", "latvija", "lva"),
    "lt": ("lithuania", "lietuva", "ltu"),
    "pl": ("poland", "polska", "pol"),
    "cz": ("czech republic", "czechia", "cesko", "cze"),
    "sk": ("slovakia", "slovensko", "svk"),
    "hu": ("hungary", "magyarorszag", "hun"),
    "ro": ("romania", "rou"),
    "bg": ("bulgaria", "bgr"),
    "gr": ("greece", "hellas", "grc"),
    "tr": ("turkey", "turkiye", "tur"),
    "ua": ("ukraine", "ukr"),
    "ru": ("russia", "russian federation", "rus"),
    "ca": ("canada", "can"),
    "mx": ("mexico", "mex"),
    "br": ("brazil", "brasil", "bra"),
    "ar": ("argentina", "arg"),
    "cl": ("chile", "chl"),
    "co": ("colombia", "col"),
    "au": ("australia", "aus"),
    "nz": ("new zealand", "nzl"),
    "jp": ("japan", "nippon", "jpn"),
    "cn": ("china", "peoples republic of china", "prc", "chn"),
    "hk": ("hong kong", "hkg"),
    "tw": ("taiwan", "twn"),
    "kr": ("south korea", "korea", "republic of korea", "kor"),
    "sg": ("singapore", "sgp"),
    "in": ("india", "ind"),
    "il": ("israel", "isr"),
    "ae": ("united arab emirates", "uae", "are"),
    "sa": ("saudi arabia", "sau"),
    "za": ("south africa", "zaf"),
}
_COUNTRY_LOOKUP: dict[str, str] = {
    alias: code for code, aliases in _COUNTRY_ALIASES.items() for alias in (code, *aliases)
}


def _fold_place(value: str) -> str:
    return " ".join(_NON_WORD.sub(" ", fold_text(value).translate(_APOSTROPHES)).split())


@functools.lru_cache(maxsize=1 << 14)
def normalize_country(country: str | None) -> str | None:
    """ISO alpha-2 (lower case) for known spellings, else the folded text; None when empty.

    Cached: 145,000 accounts on ``large`` name a few hundred spellings between them."""
    if not country:
        return None
    folded = _fold_place(str(country))
    if not folded:
        return None
    return _COUNTRY_LOOKUP.get(folded, folded)


def normalize_city(city: str | None) -> str | None:
    """Folded city name (``São Paulo`` → ``sao paulo``); None when empty."""
    if not city:
        return None
    folded = _fold_place(str(city))
    return folded or None


#: English (and other) exonyms of cities where business addresses are often written either way,
#: to the local name. Folded like ``city_key`` folds, so the table is written as people type.
_CITY_EXONYMS: dict[str, tuple[str, ...]] = {
    "München": ("Munich", "Monaco di Baviera"),
    "Köln": ("Cologne",),
    "Nürnberg": ("Nuremberg",),
    "Hannover": ("Hanover",),
    "Frankfurt": ("Frankfurt am Main", "Frankfurt a. M.", "Frankfurt/Main", "Francfort"),
    "Braunschweig": ("Brunswick",),
    "Wien": ("Vienna", "Vienne"),
    "Zürich": ("Zurich",),
    "Genève": ("Geneva", "Genf", "Ginevra"),
    "Basel": ("Basle", "Bâle"),
    "Luzern": ("Lucerne",),
    "Bern": ("Berne",),
    "Göteborg": ("Gothenburg",),
    "København": ("Copenhagen", "Kopenhagen"),
    "Aarhus": ("Århus",),
    "Den Haag": ("The Hague", "'s-Gravenhage", "La Haye"),
    "Bruxelles": ("Brussels", "Brussel", "Brüssel"),
    "Antwerpen": ("Antwerp", "Anvers"),
    "Gent": ("Ghent", "Gand"),
    "Brugge": ("Bruges",),
    "Liège": ("Luik", "Lüttich"),
    "Lisboa": ("Lisbon", "Lissabon"),
    "Porto": ("Oporto",),
    "Sevilla": ("Seville",),
    "Zaragoza": ("Saragossa",),
    "A Coruña": ("La Coruña", "Corunna"),
    "Milano": ("Milan", "Mailand"),
    "Roma": ("Rome", "Rom"),
    "Torino": ("Turin",),
    "Napoli": ("Naples", "Neapel"),
    "Firenze": ("Florence", "Florenz"),
    "Venezia": ("Venice", "Venedig"),
    "Genova": ("Genoa",),
    "Praha": ("Prague", "Prag"),
    "Warszawa": ("Warsaw", "Warschau", "Varsovie"),
    "Kraków": ("Cracow", "Krakau"),
    "Wrocław": ("Breslau",),
    "Gdańsk": ("Danzig",),
    "București": ("Bucharest", "Bukarest"),
    "Beograd": ("Belgrade", "Belgrad"),
    "Athina": ("Athens", "Athen", "Athènes"),
    "Moskva": ("Moscow", "Moskau"),
    "Sankt-Peterburg": ("Saint Petersburg", "St. Petersburg", "St Petersburg"),
    "Kyiv": ("Kiev",),
    "Helsinki": ("Helsingfors",),
    "Turku": ("Åbo",),
    "İstanbul": ("Istanbul",),
    "Montréal": ("Montreal",),
    "Québec": ("Quebec City", "Ville de Québec"),
    "New York": ("New York City", "NYC"),
    "México": ("Mexico City", "Ciudad de México", "CDMX"),
    "Beijing": ("Peking",),
}

_TRANSLIT_PAIRS = re.compile(r"(?<=[a-z])(ae|oe|ue|aa)")


def _city_fold(value: str) -> str:
    """Fold a place name so that ``Düsseldorf``/``Duesseldorf``, ``Århus``/``Aarhus`` meet.

    ``fold_text`` drops the umlaut (``ü`` → ``u``); a keyboard without one writes ``ue``. So the
    vowel pairs of those transliterations collapse to their first letter on both sides (after a
    letter only: a city's first letters stay as typed). Applied to both sides alike, it can only
    make two spellings of one name meet; two different cities that collapse together are rare.
    """
    folded = _fold_place(value)
    return _TRANSLIT_PAIRS.sub(lambda m: m.group(1)[0], folded)


_CITY_LOOKUP: dict[str, str] = {
    _city_fold(alias): _city_fold(local)
    for local, aliases in _CITY_EXONYMS.items()
    for alias in aliases
}


@functools.lru_cache(maxsize=1 << 16)
def city_key(city: str | None) -> str | None:
    """A city's comparison key: folded, transliteration-tolerant, exonyms to the local name.
    Cached like ``normalize_country`` (cities repeat across accounts: 1.8 s of each resolution
    on ``large`` was folding the same names again).

    ``Munich``, ``München`` and ``Muenchen`` give one key; so do ``Düsseldorf`` and
    ``Duesseldorf``. Why more than ``normalize_city``: each CRM's forms and imports spell a city
    in their own language and keyboard, and a location check that misses that splits customers.
    """
    if not city:
        return None
    folded = _city_fold(str(city))
    if not folded:
        return None
    return _CITY_LOOKUP.get(folded, folded)
