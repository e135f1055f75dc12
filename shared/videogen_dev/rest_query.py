"""PostgREST's query-string grammar, for the local PostgREST (videogen_dev.rest_api):
``select``, filters (``col=op.value``, ``not.``, ``or=(…)``/``and=(…)`` trees), ``order``,
``columns`` / ``on_conflict`` and the ``Prefer`` header, parsed into plain dataclasses.

Hand-written: PostgREST's grammar is its own (Haskell parsec in ``ApiRequest/QueryParams``)
and no Python package parses it. Nothing here touches SQL: rest_api turns the parsed
request into psycopg ``sql`` compositions (identifiers and literals, never raw text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Operators served, and the SQL operator each one is (rest_api renders them).
OPERATORS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
    "is": "IS",
    "isdistinct": "IS DISTINCT FROM",
    "in": "IN",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
# PostgREST operators this stand-in refuses (answered with PGRST127, named).
UNSERVED_OPERATORS = {
    "fts": "full-text search (fts)",
    "plfts": "full-text search (plfts)",
    "phfts": "full-text search (phfts)",
    "wfts": "full-text search (wfts)",
}
IS_VALUES = {"null", "not_null", "true", "false", "unknown"}
RESERVED = {"select", "order", "limit", "offset", "on_conflict", "columns", "and", "or"}

_NAME = r'(?:"(?:[^"]|"")+"|[^\s"\'(),.:!>\-]+(?:-(?!>)[^\s"\'(),.:!>\-]*)*)'
_KEY = r'(?:"(?:[^"]|"")+"|[^\s"\'(),.:!>\-]+)'
_FIELD = re.compile(rf"^(?P<name>{_NAME})(?P<path>(?:->>?{_KEY})*)$")
_ARROW = re.compile(rf"(->>?)({_KEY})")
_CAST = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(?:\[\])?$")


class QueryError(Exception):
    """A query string PostgREST would refuse to parse (PGRST100), or a request for a feature
    the local PostgREST does not serve (``unserved``: PGRST127, named)."""

    def __init__(self, message: str, details: str | None = None, *, code: str = "PGRST100") -> None:
        super().__init__(message)
        self.message, self.details, self.code = message, details, code


def unserved(feature: str) -> QueryError:
    """A PostgREST feature this local stand-in does not serve."""
    return QueryError(
        f"The local PostgREST does not serve {feature}",
        "Served by Supabase's PostgREST, not by the local dev server's /rest/v1 "
        "(README: 'Local PostgREST (`/rest/v1`)').",
        code="PGRST127",
    )


# Data -------------------------------------------------------------------------------------
@dataclass
class Field:
    """A column, optionally followed by JSON arrows: ``data->a->>b``."""

    name: str
    path: list[tuple[str, str | int]] = field(default_factory=list)

    @property
    def default_alias(self) -> str:
        """The key PostgREST gives a selected field: the last JSON key, else the column."""
        return str(self.path[-1][1]) if self.path else self.name


@dataclass
class Column:
    """A selected field: ``alias:field::cast``."""

    field: Field
    alias: str | None = None
    cast: str | None = None


@dataclass
class Star:
    """``*``: every column."""


@dataclass
class Embed:
    """An embedded resource: ``alias:name!hint!inner(select)``."""

    name: str
    alias: str | None
    hint: str | None
    inner: bool
    select: list[Column | Star | Embed]

    @property
    def key(self) -> str:
        return self.alias or self.name


Item = Column | Star | Embed


@dataclass
class Filter:
    """``field=[not.]op.value``; ``value`` is a list for ``in``."""

    field: Field
    op: str
    value: str | list[str]
    negate: bool = False
    quantifier: str | None = None  # any / all (refused)


@dataclass
class Logic:
    """``[not.]and=(…)`` / ``[not.]or=(…)``."""

    op: str  # "and" | "or"
    children: list[Filter | Logic]
    negate: bool = False


@dataclass
class OrderTerm:
    field: Field
    desc: bool = False
    nulls: str | None = None  # "first" | "last"


# Splitting --------------------------------------------------------------------------------
def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside parentheses and double quotes (backslash escapes in quotes)."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"unexpected ')' in ({text})")
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if depth != 0 or quoted:
        raise QueryError(f"unbalanced parentheses or quotes in ({text})")
    parts.append(text[start:])
    return parts


def unquote(name: str) -> str:
    """A name as written: a double-quoted name unquoted (``""`` is ``"``), a bare one as is."""
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def _unquote_value(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


# Fields -----------------------------------------------------------------------------------
def parse_field(text: str, what: str = "field") -> Field:
    """``col`` or ``col->a->>b`` (integer keys index arrays)."""
    m = _FIELD.match(text.strip())
    if not m:
        raise QueryError(f"failed to parse {what} ({text})", f'"{text}" is not a column name')
    path: list[tuple[str, str | int]] = []
    for arrow, key in _ARROW.findall(m.group("path")):
        raw = unquote(key)
        path.append((arrow, int(raw) if re.fullmatch(r"-?\d+", key) else raw))
    return Field(unquote(m.group("name")), path)


# select -----------------------------------------------------------------------------------
_EMBED = re.compile(
    rf"^(?:(?P<alias>{_NAME}):)?(?P<spread>\.\.\.)?(?P<name>{_NAME})"
    rf"(?P<hints>(?:!{_NAME})*)\((?P<inner>.*)\)$",
    re.S,
)
_ALIASED = re.compile(rf"^(?P<alias>{_NAME}):(?!:)(?P<rest>.*)$", re.S)


def parse_select(text: str) -> list[Item]:
    """The ``select`` parameter (default ``*``)."""
    if not text.strip():
        return [Star()]
    return [_select_item(part.strip(), text) for part in split_top(text)]


def _select_item(part: str, whole: str) -> Item:
    if part == "*":
        return Star()
    if not part:
        raise QueryError(f"failed to parse select parameter ({whole})", "empty select item")
    if part.startswith("...") or re.match(rf"^{_NAME}:\.\.\.", part):
        raise unserved("spread embeds (`...table(cols)`)")
    m = _EMBED.match(part)
    if m:
        name = unquote(m.group("name"))
        inner_text = m.group("inner")
        if name == "count" and not inner_text.strip():
            raise aggregates()
        hints = [unquote(h) for h in re.findall(rf"!({_NAME})", m.group("hints"))]
        inner = False
        hint = None
        for h in hints:
            if h in ("inner", "left"):
                inner = h == "inner"
            elif hint is None:
                hint = h
            else:
                raise QueryError(f"failed to parse select parameter ({whole})", f"two hints: {h}")
        alias = unquote(m.group("alias")) if m.group("alias") else None
        return Embed(name, alias, hint, inner, parse_select(inner_text))
    alias = None
    m2 = _ALIASED.match(part)
    if m2:
        alias, part = unquote(m2.group("alias")), m2.group("rest")
    cast = None
    if "::" in part:
        part, cast = part.rsplit("::", 1)
        cast = cast.strip()
        if not _CAST.match(cast):
            raise QueryError(f"failed to parse select parameter ({whole})", f"bad cast ::{cast}")
    if re.search(r"\.\w+\(\)$", part) or part.endswith("()"):
        raise aggregates()
    try:
        return Column(parse_field(part, "select parameter"), alias, cast)
    except QueryError as exc:
        raise QueryError(f"failed to parse select parameter ({whole})", exc.details) from exc


def aggregates() -> QueryError:
    """Supabase's PostgREST answer: aggregates are off (``db-aggregates-enabled`` false)."""
    return QueryError("Use of aggregate functions is not allowed", None, code="PGRST123")


# Filters ----------------------------------------------------------------------------------
_OP = re.compile(r"^(?P<op>[a-z]+)(?:\((?P<arg>[^)]*)\))?$")


def parse_filter(field_text: str, expression: str) -> Filter:
    """``field`` and ``[not.]op[(any|all)].value``."""
    fld = parse_field(field_text, "filter")
    negate = False
    rest = expression
    if rest.startswith("not."):
        negate, rest = True, rest[4:]
    op_text, dot, value = rest.partition(".")
    m = _OP.match(op_text)
    if not dot or not m:
        raise QueryError(
            f"failed to parse filter ({expression})",
            f'"{op_text}" is not an operator followed by "." and a value',
        )
    op, arg = m.group("op"), m.group("arg")
    if op in UNSERVED_OPERATORS:
        raise unserved(UNSERVED_OPERATORS[op])
    if op not in OPERATORS:
        raise QueryError(f"failed to parse filter ({expression})", f'unknown operator "{op}"')
    quantifier = None
    if arg is not None:
        if arg in ("any", "all") and op in ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike",
                                             "match", "imatch"):  # fmt: skip
            raise unserved(f"the ({arg}) operator modifier")
        raise QueryError(f"failed to parse filter ({expression})", f'"{op}({arg})"')
    if op == "in":
        text = value.strip()
        if not (text.startswith("(") and text.endswith(")")):
            raise QueryError(f"failed to parse filter ({expression})", "in. takes a (list)")
        inner = text[1:-1]
        items = [] if not inner.strip() else [_unquote_value(v.strip()) for v in split_top(inner)]
        return Filter(fld, op, items, negate, quantifier)
    if op == "is" and value.lower() not in IS_VALUES:
        raise QueryError(
            f"failed to parse filter ({expression})",
            "is. takes null, not_null, true, false or unknown",
        )
    return Filter(fld, op, value, negate, quantifier)


def parse_logic(op: str, text: str, negate: bool = False) -> Logic:
    """``(a.eq.1,or(b.gt.2,c.is.null),not.and(…))`` for ``and`` / ``or``."""
    t = text.strip()
    if not (t.startswith("(") and t.endswith(")")):
        raise QueryError(f"failed to parse logic tree ({text})", "a logic tree is (…)")
    children: list[Filter | Logic] = []
    for part in split_top(t[1:-1]):
        part = part.strip()
        m = re.match(r"^(not\.)?(and|or)(\(.*\))$", part, re.S)
        if m:
            children.append(parse_logic(m.group(2), m.group(3), bool(m.group(1))))
            continue
        fld, dot, expr = _split_field(part)
        if not dot:
            raise QueryError(f"failed to parse logic tree ({text})", f'"{part}" is no filter')
        children.append(parse_filter(fld, expr))
    if not children:
        raise QueryError(f"failed to parse logic tree ({text})", "an empty logic tree")
    return Logic(op, children, negate)


def _split_field(part: str) -> tuple[str, str, str]:
    """``data->a.eq.1`` → (``data->a``, ``.``, ``eq.1``): the field ends at the first dot
    outside a quoted name."""
    quoted = False
    for i, c in enumerate(part):
        if c == '"':
            quoted = not quoted
        elif c == "." and not quoted:
            return part[:i], ".", part[i + 1 :]
    return part, "", ""


# order ------------------------------------------------------------------------------------
def parse_order(text: str) -> list[OrderTerm]:
    terms = []
    for part in split_top(text):
        part = part.strip()
        if "(" in part:
            raise unserved("ordering by an embedded resource's column (`order=table(col)`)")
        fld, _, mods = _split_field(part)
        term = OrderTerm(parse_field(fld, "order"))
        for mod in [m for m in mods.split(".") if m] if mods else []:
            if mod in ("asc", "desc"):
                term.desc = mod == "desc"
            elif mod in ("nullsfirst", "nullslast"):
                term.nulls = mod[5:]
            else:
                raise QueryError(f"failed to parse order ({text})", f'unknown modifier "{mod}"')
        terms.append(term)
    return terms


def parse_columns(text: str) -> list[str]:
    """``columns`` / ``on_conflict``: names, bare or double-quoted."""
    names = []
    for part in split_top(text):
        part = part.strip()
        if not re.fullmatch(_NAME, part):
            raise QueryError(f"failed to parse columns parameter ({text})", f'"{part}"')
        names.append(unquote(part))
    return names


def parse_int(name: str, value: str) -> int:
    if not re.fullmatch(r"\d+", value.strip()):
        raise QueryError(f"failed to parse {name} parameter ({value})", "not a number")
    return int(value)


# Prefer -----------------------------------------------------------------------------------
@dataclass
class Preferences:
    ret: str | None = None  # representation | minimal | headers-only
    count: str | None = None  # exact | planned | estimated
    resolution: str | None = None  # merge-duplicates | ignore-duplicates
    missing: str | None = None  # default | null
    strict: bool = False
    applied: list[str] = field(default_factory=list)


PREFERENCES = {
    "return": {"representation", "minimal", "headers-only"},
    "count": {"exact", "planned", "estimated"},
    "resolution": {"merge-duplicates", "ignore-duplicates"},
    "missing": {"default", "null"},
    "handling": {"strict", "lenient"},
}


def parse_prefer(values: list[str]) -> Preferences:
    """The ``Prefer`` headers. Unknown preferences are ignored (``handling=lenient``, the
    default) or refused with ``handling=strict`` (PGRST122); preferences PostgREST serves
    and this stand-in does not are refused (PGRST127)."""
    prefs = Preferences()
    items = [p.strip() for v in values for p in v.split(",") if p.strip()]
    invalid = []
    strict = any(i.replace(" ", "") == "handling=strict" for i in items)
    for item in items:
        key, _, value = (s.strip() for s in item.partition("="))
        if key == "tx" and value == "rollback":
            raise unserved("`Prefer: tx=rollback`")
        if key == "params" and value == "single-object":
            raise unserved("`Prefer: params=single-object`")
        if key == "max-affected":
            raise unserved("`Prefer: max-affected`")
        if key == "timezone":
            raise unserved("`Prefer: timezone`")
        if key in PREFERENCES and value in PREFERENCES[key]:
            if key == "return":
                prefs.ret = value
            elif key == "count":
                prefs.count = value
            elif key == "resolution":
                prefs.resolution = value
            elif key == "missing":
                prefs.missing = value
            else:
                prefs.strict = value == "strict"
        elif not (key == "tx" and value == "commit"):
            invalid.append(item)
    if strict and invalid:
        raise QueryError(
            "Invalid preferences given with handling=strict",
            f"Invalid preferences: {', '.join(invalid)}",
            code="PGRST122",
        )
    return prefs
