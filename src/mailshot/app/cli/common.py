"""What every command shares: the consoles, showing values from data safely (:func:`shown`,
:func:`json_text`), loading settings, and showing an error as ``CODE: sentence`` and
``Fix: ...`` before ending with :data:`EXIT_ERROR`."""

from __future__ import annotations

from typing import Any, NoReturn

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mailshot.app.cli.errors import DATABASE_UNREACHABLE, SETTINGS_INVALID
from mailshot.core.errors import AppError
from mailshot.core.logs import mask_secrets
from mailshot.core.safetext import json_safe, plain
from mailshot.core.settings import Settings

EXIT_OK = 0
#: A sync failed or was cancelled, or a request was refused.
EXIT_ERROR = 1
#: ``--wait`` ran out of time; the sync carries on.
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class RemoteError(Exception):
    """An error an API answered with: its code, message and fix, as it sent them."""

    def __init__(self, code: str, message: str, fix: str = "", status: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fix = fix
        self.status = status


def shown(value: object) -> str:
    """``value`` (from data) fit to put in a Rich markup string: every character a
    terminal would act on escaped (:func:`mailshot.core.safetext.plain`), and its square
    brackets escaped so that they are shown, not read as markup."""
    return escape(plain(value))


def json_text(data: Any) -> str:
    """``data`` as indented JSON, safe to print (:func:`mailshot.core.safetext.json_safe`)."""
    return json_safe(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def show_error(code: str, message: str, fix: str = "") -> None:
    """Print an error as ``code: message`` and ``Fix: ...`` on stderr."""
    err_console.print(f"[bold red]{shown(code)}[/]: {shown(mask_secrets(message))}")
    if fix:
        err_console.print(f"[bold]Fix:[/] {shown(fix)}")


def fail(err: AppError | RemoteError, exit_code: int = EXIT_ERROR) -> NoReturn:
    """Show ``err`` and end the command with ``exit_code``."""
    show_error(err.code, err.message, err.fix)
    raise typer.Exit(exit_code)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the config file, with the command's options on
    top (an option left out, None, changes nothing)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(AppError(SETTINGS_INVALID, summary=summary))


def safe_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def database_error(part: str, url: str, exc: OperationalError) -> AppError:
    reason = str(exc.orig or exc).strip().splitlines()[0] if (exc.orig or exc) else "unknown"
    return AppError(DATABASE_UNREACHABLE, part=part.upper(), url=safe_url(url), reason=reason)
