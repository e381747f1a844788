"""What the member pages of mailing lists and marketing campaigns share: reading the people
to add from a form (ids or email addresses, refused with a message when any is unknown or
there are none or too many), and showing members with their names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.webui.pages import flash
from mailshot.crm.models import Person

#: Most people one "add members" form may name (the API takes bulk requests for more).
MAX_PER_FORM = 1000
_SPLIT = re.compile(r"[\s,;]+")


def resolve_people(db: Session, raw: str) -> tuple[list[int], list[str]]:
    """Person ids named in ``raw`` (ids or email addresses, any separators), and the
    entries that match nobody."""
    ids: list[int] = []
    emails: list[str] = []
    for token in (t for t in _SPLIT.split(raw or "") if t):
        if token.isdigit():
            ids.append(int(token))
        else:
            emails.append(token.lower())
    unknown: list[str] = []
    found_ids: list[int] = []
    if ids:
        known = set(db.scalars(select(Person.id).where(Person.id.in_(ids))))
        found_ids += [i for i in ids if i in known]
        unknown += [str(i) for i in ids if i not in known]
    if emails:
        rows = db.execute(
            select(Person.email_normalised, Person.id).where(Person.email_normalised.in_(emails))
        ).all()
        by_email: dict[str, int] = {}
        for email, pid in rows:
            if email is not None:
                by_email.setdefault(email, pid)
        found_ids += [by_email[e] for e in emails if e in by_email]
        unknown += [e for e in emails if e not in by_email]
    return list(dict.fromkeys(found_ids)), unknown


def people_to_add(request: Request, db: Session, form: dict[str, Any]) -> list[int] | None:
    """The ids of the people an "add members" form names in its ``people`` field; None,
    with a message saying why, when one matches nobody or there are none or too many."""
    ids, unknown = resolve_people(db, str(form.get("people", "")))
    if unknown:
        shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
        flash(request, f"Nobody was added: no person matches {shown}.", "bad")
    elif not ids:
        flash(request, "Name at least one person (an id or an email address).", "bad")
    elif len(ids) > MAX_PER_FORM:
        flash(request, f"At most {MAX_PER_FORM} people at once; use the API for more.", "bad")
    else:
        return ids
    return None


def people_by_id(db: Session, person_ids: Iterable[int]) -> dict[int, Any]:
    ids = list(person_ids)
    if not ids:
        return {}
    return {p.id: p for p in db.scalars(select(Person).where(Person.id.in_(ids)))}
