"""Turning posted forms into the parts' Pydantic schemas, and their errors into messages
per field, so a page shows the same validation the API applies."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mailshot.core.errors import AppError

M = TypeVar("M", bound=BaseModel)

FieldErrors = dict[str, str]


def text(form: dict[str, Any], name: str) -> str | None:
    """A text field: trimmed, and None when blank."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def checked(form: dict[str, Any], name: str) -> bool:
    return form.get(name) in ("1", "on", "true", "yes")


def integer(form: dict[str, Any], name: str) -> int | str | None:
    """An integer field; a value that is not a number is passed on for the schema to refuse."""
    value = text(form, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def parse(schema: type[M], data: dict[str, Any]) -> tuple[M | None, FieldErrors]:
    """Validate ``data`` with ``schema``; return the model, or the errors by field."""
    try:
        return schema.model_validate(data), {}
    except ValidationError as exc:
        return None, errors_of(exc)


def errors_of(exc: ValidationError) -> FieldErrors:
    out: FieldErrors = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        name = loc[0] if loc else "_"
        message = str(err.get("msg", "is not valid"))
        message = message.removeprefix("Value error, ")
        out.setdefault(name, message)
    return out


def app_errors(exc: AppError) -> FieldErrors:
    """A service's refusal as form errors: per field when it names fields, else overall."""
    if exc.details:
        return {d.field.split(".")[0]: d.message for d in exc.details}
    text_ = exc.message + (f" {exc.fix}" if exc.fix else "")
    return {"_": text_}
