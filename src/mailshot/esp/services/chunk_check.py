"""Checking a chunk of recipients before it is written (pure: no database).

The hot path of a sync: a chunk of 20,000 rows is checked column by column with builtins
that run at C speed (``map``, ``set``, ``str`` methods over the whole chunk), and walked
row by row only when it fails, to name its problems. The addresses are checked with one
regular expression over the newline-joined chunk, which accepts an address exactly when
:func:`mailshot.esp.services.common.plausible_address` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailshot.core.errors import AppError, FieldProblem
from mailshot.core.web.types import MAX_ID
from mailshot.esp import errors
from mailshot.esp.services import common
from mailshot.esp.services.campaigns import MAX_ROWS_PER_REQUEST
from mailshot.esp.services.common import normalise_email, plausible_address

REQUIRED_COLUMNS = ("person_id", "email")
#: Optional columns and the contact column each one updates.
NAME_COLUMNS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "organisation_id": "crm_organisation_id",
    "organisation": "organisation",
}
#: Columns a chunk may carry that the ESP does not store (the CRM's row number).
IGNORED_COLUMNS = ("seq",)
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, *NAME_COLUMNS, *IGNORED_COLUMNS)
MAX_ROW_PROBLEMS = 20
#: Newline-separated plausible addresses: the pattern of :func:`plausible_address`, repeated.
_ONE = common._PLAUSIBLE.pattern
_ALL_PLAUSIBLE = re.compile(f"{_ONE}(?:\n{_ONE})*+")


@dataclass
class ParsedChunk:
    """A checked chunk: the first row per address, and the rows that repeat an address."""

    #: Column by column, one value per normalised address, in the order received: crm
    #: person ids, addresses as given but trimmed, normalised addresses, first names, last
    #: names, organisation ids, organisation names.
    columns: tuple[Sequence[Any], ...] = ((), (), (), (), (), (), ())
    #: The optional columns the chunk carries (only these are updated on contacts).
    present: tuple[str, ...] = ()
    #: (crm person id, normalised address) of rows repeating an address of this request.
    duplicates: list[tuple[int, str]] = field(default_factory=list)

    #: Set by :meth:`let_go`: how many rows there were.
    staged_count: int | None = None

    @property
    def count(self) -> int:
        return len(self.columns[0]) if self.staged_count is None else self.staged_count

    def let_go(self) -> None:
        """Drop the values (they are in the database now), keeping the count, the
        duplicates and the columns present: a chunk that waits for the write lock then
        holds no Python copy of its rows."""
        self.staged_count = self.count
        self.columns = ((), (), (), (), (), (), ())

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """One tuple per normalised address, the columns' values in their order."""
        return list(zip(*self.columns, strict=True))

    @property
    def contacts(self) -> list[dict[str, Any]]:
        """The contact values, one per normalised address, sorted by address."""
        keys = ("crm_person_id", "email", "email_normalised", "first_name", "last_name")
        out = [
            {**dict(zip(keys, r, strict=False)), "crm_organisation_id": r[5], "organisation": r[6]}
            for r in self.rows
        ]
        return sorted(out, key=lambda c: c["email_normalised"])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ids_in_range(values: Sequence[Any]) -> bool:
    """Every id given (``None`` aside) fits the databases' ids: 1 .. 2**63-1 (C speed)."""
    ids = set(values)
    ids.discard(None)
    return not ids or (min(ids) >= 1 and max(ids) <= MAX_ID)


def _check_shape(columns: list[str], n_rows: int) -> None:
    if n_rows > MAX_ROWS_PER_REQUEST:
        raise AppError(errors.RECIPIENTS_TOO_MANY_ROWS, rows=n_rows, max_rows=MAX_ROWS_PER_REQUEST)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise AppError(errors.RECIPIENT_COLUMNS_REPEATED, repeated=", ".join(repeated))
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise AppError(errors.RECIPIENT_COLUMNS_MISSING, missing=" and ".join(missing))
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    if unknown:
        raise AppError(
            errors.RECIPIENT_COLUMNS_UNKNOWN,
            unknown=", ".join(repr(c) for c in unknown),
            known=", ".join(KNOWN_COLUMNS),
        )


def _column(columns: list[str], transposed: list[tuple[Any, ...]], name: str) -> Sequence[Any]:
    if not transposed:  # no rows
        return ()
    if name not in columns:
        return (None,) * len(transposed[0])
    return transposed[columns.index(name)]


def all_plausible(joined: str, count: int) -> bool:
    """``count`` addresses, newline-joined in ``joined``, each plausible as
    :func:`plausible_address` would say (it is given no over-long ones: the caller checks
    lengths): one regular-expression match over all of them (an address cannot contain a
    newline, so the text splits unambiguously)."""
    return count == 0 or (
        joined.count("\n") == count - 1 and _ALL_PLAUSIBLE.fullmatch(joined) is not None
    )


_NONE: type = type(None)
_INT: frozenset[type] = frozenset({int})
_STR: frozenset[type] = frozenset({str})
_ONLY_NONE: frozenset[type] = frozenset({_NONE})
_INT_OR_NONE: frozenset[type] = frozenset({int, _NONE})
_STR_OR_NONE: frozenset[type] = frozenset({str, _NONE})


def _types_are(values: Sequence[Any], allowed: frozenset[type]) -> bool:
    """Every value's exact type in ``allowed`` (``map``/``set`` run at C speed; a bool is
    not an int here)."""
    return set(map(type, values)) <= allowed


def _names(values: Sequence[Any]) -> Sequence[Any]:
    """Names as written: ``None`` becomes ``""`` and a name is cut to 255 characters (the
    common chunk, all short strings or all ``None``, passes through without a loop)."""
    if _types_are(values, _ONLY_NONE):
        return ("",) * len(values)
    if _types_are(values, _STR) and (not values or max(map(len, values)) <= 255):
        return values
    return [(v or "")[:255] for v in values]


def parse_chunk(columns: list[str], rows: list[list[Any]]) -> ParsedChunk:
    """Check and normalise a chunk (pure). Raises the catalogued error for bad input.

    The checks run column by column over the whole chunk; only a chunk that fails them is
    walked row by row, to name its problems.
    """
    _check_shape(columns, len(rows))
    width = len(columns)
    present = tuple(c for c in NAME_COLUMNS if c in columns)
    if rows and set(map(len, rows)) != {width}:
        _raise_problems(columns, rows)  # raises: a row of the wrong width is a problem
    transposed = list(zip(*rows, strict=True))
    persons = _column(columns, transposed, "person_id")
    emails = _column(columns, transposed, "email")
    given_firsts = _column(columns, transposed, "first_name")
    given_lasts = _column(columns, transposed, "last_name")
    orgs = _column(columns, transposed, "organisation_id")
    given_org_names = _column(columns, transposed, "organisation")
    if not (
        _types_are(persons, _INT)
        and _types_are(emails, _STR)
        and _types_are(given_firsts, _STR_OR_NONE)
        and _types_are(given_lasts, _STR_OR_NONE)
        and _types_are(orgs, _INT_OR_NONE)
        and _types_are(given_org_names, _STR_OR_NONE)
        and _ids_in_range(persons)
        and _ids_in_range(orgs)
    ):
        _raise_problems(columns, rows)
    joined = "\n".join(emails)
    trimmed: Sequence[str] = emails
    norms: list[str] = []
    if emails and max(map(len, emails)) <= 320 and all_plausible(joined, len(emails)):
        # Plausible as given, so nothing to trim; lower-casing keeps them plausible (it
        # cannot make an "@", a dot or a space), so they are not checked again.
        norms = joined.lower().split("\n")
    elif emails:
        trimmed = [e.strip() for e in emails]
        norms = [e.lower() for e in trimmed]
        if max(map(len, norms)) > 320 or not all_plausible("\n".join(norms), len(norms)):
            _raise_problems(columns, rows)
    firsts, lasts = _names(given_firsts), _names(given_lasts)
    org_names = _names(given_org_names)
    parsed = ParsedChunk(present=present)
    if len(set(norms)) == len(norms):
        parsed.columns = (persons, trimmed, norms, firsts, lasts, orgs, org_names)
        return parsed
    seen: set[str] = set()
    kept: list[tuple[Any, ...]] = []
    for row in zip(persons, trimmed, norms, firsts, lasts, orgs, org_names, strict=True):
        if row[2] in seen:
            parsed.duplicates.append((row[0], row[2]))
        else:
            seen.add(row[2])
            kept.append(row)
    parsed.columns = tuple(map(list, zip(*kept, strict=True)))
    return parsed


def _raise_problems(columns: list[str], rows: list[list[Any]]) -> None:
    """Walk the rows one by one and raise ``RECIPIENT_ROWS_INVALID`` naming the problems
    (returns only if no row has one)."""
    width = len(columns)
    i_person, i_email = columns.index("person_id"), columns.index("email")
    i_first = columns.index("first_name") if "first_name" in columns else None
    i_last = columns.index("last_name") if "last_name" in columns else None
    i_org = columns.index("organisation_id") if "organisation_id" in columns else None
    i_org_name = columns.index("organisation") if "organisation" in columns else None
    problems: list[FieldProblem] = []
    for n, row in enumerate(rows):
        if len(row) != width:
            problems.append(
                FieldProblem(f"rows.{n}", "row_width", f"has {len(row)} values for {width} columns")
            )
            continue
        person, email = row[i_person], row[i_email]
        first = row[i_first] if i_first is not None else None
        last = row[i_last] if i_last is not None else None
        org = row[i_org] if i_org is not None else None
        org_name = row[i_org_name] if i_org_name is not None else None
        problem = None
        if not _is_int(person):
            problem = ("person_id", "int_type", "person_id must be an integer")
        elif not _ids_in_range((person,)):
            problem = ("person_id", "id_range", f"person_id must be from 1 to {MAX_ID}")
        elif not isinstance(email, str) or not plausible_address(normalise_email(email)):
            problem = ("email", "email_invalid", f"{email!r} is not an email address")
        elif not (first is None or isinstance(first, str)) or not (
            last is None or isinstance(last, str)
        ):
            problem = ("first_name", "string_type", "names must be strings or null")
        elif not (org is None or _is_int(org)):
            problem = ("organisation_id", "int_type", "organisation_id must be an integer")
        elif not _ids_in_range((org,)):
            problem = ("organisation_id", "id_range", f"organisation_id must be from 1 to {MAX_ID}")
        elif not (org_name is None or isinstance(org_name, str)):
            problem = ("organisation", "string_type", "organisation must be a string or null")
        if problem is not None:
            problems.append(FieldProblem(f"rows.{n}.{problem[0]}", problem[1], problem[2]))
    if not problems:  # only values the column checks are stricter about (int subclasses)
        return
    first_problem = problems[0]
    raise AppError(
        errors.RECIPIENT_ROWS_INVALID,
        details=problems[:MAX_ROW_PROBLEMS],
        count=len(problems),
        first_row=first_problem.field.split(".")[1],
        first_problem=first_problem.message,
    )
