"""SOQL parser: the subset the hub's connectors use, with Salesforce's error semantics.

Why a real parser: the connectors build SOQL with ``format_soql`` and must get the same errors a
real org gives (``MALFORMED_QUERY`` for syntax, ``INVALID_FIELD``/``INVALID_TYPE`` for names,
checked later by the compiler). The grammar follows the SOQL reference:

    SELECT fieldList FROM object [WHERE cond] [WITH SECURITY_ENFORCED]
        [ORDER BY item [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
        [FOR VIEW|REFERENCE|UPDATE]

``fieldList``: field paths (``Account.Owner.Name``), ``COUNT()``, ``FIELDS(ALL|STANDARD|CUSTOM)``.
``cond``: comparisons ``= != <> < <= > >=``, ``[NOT] IN (...)``, ``LIKE``, ``INCLUDES``/
``EXCLUDES``, ``AND``/``OR``/``NOT`` and parentheses. Like real SOQL, mixing ``AND`` and ``OR``
at one level without parentheses is a syntax error. Values: strings, numbers, ``null``,
``true``/``false``, unquoted date and datetime literals, date functions (``TODAY``,
``LAST_N_DAYS:30``…). Child subqueries, semi-joins, aggregates and ``GROUP BY`` are not
supported and fail with ``MALFORMED_QUERY`` naming the sandbox limitation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce.errors import ApiError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT:]))
  | (?P<num>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

#: Date functions; the ones ending in ``_N_…`` take ``:n``.
DATE_FUNCTIONS = frozenset(
    {
        "YESTERDAY",
        "TODAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
        "THIS_YEAR",
        "LAST_YEAR",
        "NEXT_YEAR",
        "LAST_N_DAYS",
        "NEXT_N_DAYS",
        "N_DAYS_AGO",
        "LAST_N_WEEKS",
        "NEXT_N_WEEKS",
        "LAST_N_MONTHS",
        "NEXT_N_MONTHS",
    }
)

_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass
class Token:
    kind: str  # str, datetime, date, num, ident, op, punct, eof
    value: str
    pos: int

    def kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.value.upper() in words


@dataclass
class Literal:
    """A value in a condition. ``kind``: string, number, bool, null, date, datetime, datefn."""

    kind: str
    value: Any
    pos: int
    raw: str = ""  # string literal body with LIKE escapes kept (``\\%``, ``\\_``)
    n: int | None = None  # the ``n`` of ``LAST_N_DAYS:n``


@dataclass
class Path:
    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass
class Compare:
    path: Path
    op: str  # = != < <= > >=
    value: Literal


@dataclass
class InList:
    path: Path
    values: list[Literal]
    negate: bool


@dataclass
class Like:
    path: Path
    pattern: Literal


@dataclass
class Includes:
    path: Path
    values: list[Literal]
    excludes: bool


@dataclass
class BoolOp:
    op: str  # AND | OR
    items: list[Any]


@dataclass
class Not:
    item: Any


Cond = Compare | InList | Like | Includes | BoolOp | Not


@dataclass
class OrderItem:
    path: Path
    desc: bool = False
    nulls: str | None = None  # FIRST | LAST | None (default)


@dataclass
class Query:
    text: str
    object: str
    object_pos: int
    fields: list[Path] = field(default_factory=list)
    fields_fn: list[tuple[str, int]] = field(default_factory=list)  # FIELDS(ALL) etc.
    count: bool = False
    where: Cond | None = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


def error_at(text: str, pos: int, message: str, code: str = "MALFORMED_QUERY") -> ApiError:
    """Salesforce's query error text: the query, a caret, ``ERROR at Row:r:Column:c``, message."""
    row = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    line = text.splitlines()[row - 1] if text else ""
    caret = " " * (col - 1) + "^"
    return ApiError(400, code, f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{col}\n{message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise error_at(text, pos, f"unexpected token: '{text[pos : pos + 10].split()[0]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _string_body(token: Token) -> tuple[str, str]:
    """(value with escapes resolved, raw body keeping ``\\%``/``\\_`` for LIKE)."""
    body = token.value[1:-1]
    value, raw, i = [], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "%_":
                value.append("\\" + nxt)
                raw.append("\\" + nxt)
            else:
                value.append(_UNESCAPE.get(nxt, nxt))
                raw.append(_UNESCAPE.get(nxt, nxt) if nxt != "\\" else "\\\\")
            i += 2
            continue
        value.append(ch)
        raw.append(ch)
        i += 1
    return "".join(value), "".join(raw)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # ---- token helpers ------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def fail(self, token: Token | None = None, message: str | None = None) -> ApiError:
        t = token or self.tok
        shown = t.value if t.kind != "eof" else "<EOF>"
        return error_at(self.text, t.pos, message or f"unexpected token: '{shown}'")

    def expect_kw(self, word: str) -> Token:
        if not self.tok.kw(word):
            raise self.fail()
        return self.next()

    def expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.value == ch):
            raise self.fail()
        return self.next()

    def is_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value == ch

    def unsupported(self, what: str, token: Token | None = None) -> ApiError:
        return self.fail(token, f"{what} is not supported by the crmhub sandbox emulator")

    # ---- grammar --------------------------------------------------------------------------
    def query(self) -> Query:
        self.expect_kw("SELECT")
        fields: list[Path] = []
        fns: list[tuple[str, int]] = []
        count = False
        while True:
            t = self.tok
            if t.kind == "ident" and self.tokens[self.i + 1].value == "(" and "." not in t.value:
                name = t.value.upper()
                self.next()
                self.next()
                if name == "COUNT":
                    if not self.is_punct(")"):
                        raise self.unsupported("COUNT(field) / aggregate queries", t)
                    self.next()
                    count = True
                elif name == "FIELDS":
                    arg = self.next()
                    if not arg.kw("ALL", "STANDARD", "CUSTOM"):
                        raise self.fail(arg)
                    self.expect_punct(")")
                    fns.append((arg.value.upper(), t.pos))
                else:
                    raise self.unsupported(f"the function {name}()", t)
            elif self.is_punct("("):
                raise self.unsupported("a child relationship subquery", t)
            elif t.kind == "ident" and not t.kw("FROM"):
                self.next()
                fields.append(Path(tuple(t.value.split(".")), t.pos))
            else:
                raise self.fail()
            if self.is_punct(","):
                self.next()
                continue
            break
        if count and (fields or fns):
            raise self.fail(message="COUNT() must be the only element in the SELECT list")
        self.expect_kw("FROM")
        obj = self.next()
        if obj.kind != "ident" or "." in obj.value:
            raise self.fail(obj)
        q = Query(self.text, obj.value, obj.pos, fields, fns, count)
        if self.tok.kind == "ident" and not self.tok.kw(
            "WHERE", "WITH", "GROUP", "ORDER", "LIMIT", "OFFSET", "FOR", "USING"
        ):
            raise self.unsupported("an object alias in FROM")
        if self.tok.kw("USING"):
            raise self.unsupported("USING SCOPE")
        if self.tok.kw("WHERE"):
            self.next()
            q.where = self.condition()
        if self.tok.kw("WITH"):
            self.next()
            if not self.tok.kw("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"):
                raise self.unsupported("this WITH clause")
            self.next()
        if self.tok.kw("GROUP"):
            raise self.unsupported("GROUP BY")
        if self.tok.kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            q.order = self.order_list()
        if self.tok.kw("LIMIT"):
            self.next()
            q.limit = self.integer()
        if self.tok.kw("OFFSET"):
            self.next()
            q.offset = self.integer()
        if self.tok.kw("FOR"):
            self.next()
            if not self.tok.kw("VIEW", "REFERENCE", "UPDATE"):
                raise self.fail()
            self.next()
        if self.tok.kind != "eof":
            raise self.fail()
        return q

    def integer(self) -> int:
        t = self.next()
        if t.kind != "num" or not re.fullmatch(r"\d+", t.value):
            raise self.fail(t)
        return int(t.value)

    def order_list(self) -> list[OrderItem]:
        items = []
        while True:
            t = self.next()
            if t.kind != "ident":
                raise self.fail(t)
            item = OrderItem(Path(tuple(t.value.split(".")), t.pos))
            if self.tok.kw("ASC", "DESC"):
                item.desc = self.next().value.upper() == "DESC"
            if self.tok.kw("NULLS"):
                self.next()
                if not self.tok.kw("FIRST", "LAST"):
                    raise self.fail()
                item.nulls = self.next().value.upper()
            items.append(item)
            if self.is_punct(","):
                self.next()
                continue
            return items

    def condition(self) -> Cond:
        first = self.unary()
        op: str | None = None
        items = [first]
        while self.tok.kw("AND", "OR"):
            word = self.tok.value.upper()
            if op is not None and word != op:
                raise self.fail()  # mixing AND/OR without parentheses, as real SOQL rejects
            op = word
            self.next()
            items.append(self.unary())
        return BoolOp(op, items) if op else first

    def unary(self) -> Cond:
        if self.tok.kw("NOT"):
            self.next()
            return Not(self.unary())
        if self.is_punct("("):
            self.next()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Cond:
        t = self.next()
        if t.kind != "ident" or t.kw("NOT", "AND", "OR"):
            raise self.fail(t)
        path = Path(tuple(t.value.split(".")), t.pos)
        if self.tok.kind == "op":
            op = self.next().value
            return Compare(path, "!=" if op == "<>" else op, self.value())
        if self.tok.kw("LIKE"):
            self.next()
            lit = self.value()
            if lit.kind != "string":
                raise self.fail(message="LIKE needs a string literal")
            return Like(path, lit)
        negate = False
        if self.tok.kw("NOT"):
            self.next()
            negate = True
            if not self.tok.kw("IN"):
                raise self.fail()
        if self.tok.kw("IN"):
            self.next()
            return InList(path, self.value_list(), negate)
        if self.tok.kw("INCLUDES", "EXCLUDES"):
            excludes = self.next().value.upper() == "EXCLUDES"
            return Includes(path, self.value_list(), excludes)
        raise self.fail()

    def value_list(self) -> list[Literal]:
        self.expect_punct("(")
        if self.tok.kw("SELECT"):
            raise self.unsupported("a semi-join subquery")
        values = [self.value()]
        while self.is_punct(","):
            self.next()
            values.append(self.value())
        self.expect_punct(")")
        return values

    def value(self) -> Literal:
        t = self.next()
        if t.kind == "str":
            value, raw = _string_body(t)
            return Literal("string", value, t.pos, raw=raw)
        if t.kind == "num":
            num: float | int = float(t.value) if "." in t.value else int(t.value)
            return Literal("number", num, t.pos)
        if t.kind == "datetime":
            return Literal("datetime", t.value, t.pos)
        if t.kind == "date":
            return Literal("date", t.value, t.pos)
        if t.kind == "ident":
            word = t.value.upper()
            if word == "NULL":
                return Literal("null", None, t.pos)
            if word in ("TRUE", "FALSE"):
                return Literal("bool", word == "TRUE", t.pos)
            if word in DATE_FUNCTIONS:
                lit = Literal("datefn", word, t.pos)
                if "_N_" in word or word == "N_DAYS_AGO":
                    if not self.is_punct(":"):
                        raise self.fail()
                    self.next()
                    lit.n = self.integer()
                return lit
        raise self.fail(t)


def parse(text: str) -> Query:
    """Parse one SOQL statement (raises :class:`ApiError` ``MALFORMED_QUERY``)."""
    if not text or not text.strip():
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(text).query()
