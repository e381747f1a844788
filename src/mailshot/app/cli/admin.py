"""Administrative commands: ``migrate``, ``provision``, ``demo``, ``errors`` and ``version``.

``errors`` prints the whole error catalogue, after importing every part's ``errors`` module
(and the apps, whose modules define the rest), so nothing is missed; ``--markdown`` prints
the table kept in ``docs/ERRORS.md``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import OperationalError

import mailshot
from mailshot import __version__
from mailshot.app.cli.common import console, database_error, fail, load_settings, safe_url, shown
from mailshot.core.errors import CATALOGUE, ErrorSpec
from mailshot.core.logs import configure as configure_logging
from mailshot.core.settings import Settings

if TYPE_CHECKING:
    from mailshot.core.db.migrate import Part

# The CRM, the ESP and the demo are imported inside the commands that use them, so that
# `mailshot --help`, `sync` and `queue` start fast and need neither part's code.

#: Modules that define catalogue entries without being called ``errors``.
_EXTRA_ERROR_MODULES = (
    "mailshot.core.access.auth",
    "mailshot.core.web.paging",
    "mailshot.app.server",
)
_PART_ORDER = ("common", "crm", "esp", "bridge", "cli")


def migrate_checked(settings: Settings) -> None:
    """Migrate both databases; a database that cannot be opened ends the command clearly."""
    from mailshot.app import provision

    parts: tuple[tuple[Part, str], ...] = (
        ("crm", settings.crm_db_url()),
        ("esp", settings.esp_db_url()),
    )
    for part, url in parts:
        try:
            provision.migrate_part(part, url)
        except OperationalError as exc:
            fail(database_error(part, url, exc))


def migrate() -> None:
    """Apply the migrations to both databases (the CRM's and the ESP's)."""
    settings = load_settings()
    configure_logging(settings)
    migrate_checked(settings)
    console.print(f"CRM database {shown(safe_url(settings.crm_db_url()))}: up to date.")
    console.print(f"ESP database {shown(safe_url(settings.esp_db_url()))}: up to date.")


def provision_command() -> None:
    """Migrate both databases and create the first-run users and API keys (idempotent)."""
    from mailshot.app import provision

    settings = load_settings()
    configure_logging(settings)
    migrate_checked(settings)
    result = provision.ensure(settings, migrate=False)
    if result.already_provisioned:
        console.print("Already provisioned: nothing to do.")
        return
    console.print("Created: " + ", ".join(result.created) + ".")
    if result.admin_password:
        parts = " and ".join(result.password_for)
        console.print(
            f"Log in to the {parts} as [bold]{result.admin_email}[/] with the password "
            f"[bold]{shown(result.admin_password)}[/] (shown only this once)."
        )
    console.print(f"API keys are saved in {shown(result.credentials_file)} (readable by you only).")


def demo(
    people: Annotated[
        int, typer.Option(help="How many people the demo data set has.", min=10)
    ] = 3000,
    seed: Annotated[
        int | None,
        typer.Option(help="Random seed: the same seed gives the same data set (default: fixed)."),
    ] = None,
) -> None:
    """Load the demo data set into the CRM database (skipped when it is already there)."""
    from mailshot.app import demo as demo_data

    settings = load_settings()
    configure_logging(settings)
    migrate_checked(settings)
    result = demo_data.load(settings, people=people, seed=seed or demo_data.DEFAULT_SEED)
    if result.skipped:
        console.print("The demo data is already there: nothing to do.")
        return
    console.print(
        f"Loaded {result.people:,} people, {result.organisations:,} organisations, "
        f"{result.mailing_lists} mailing lists ({result.list_members:,} members), "
        f"a marketing campaign ({result.campaign_members:,} members) and "
        f"{len(result.mailshots)} mailshots:"
    )
    for name in result.mailshots:
        console.print(f"  {shown(name)}")


# ---- the error catalogue ------------------------------------------------------------------
def load_catalogue() -> list[ErrorSpec]:
    """Every catalogued error, after importing every module that defines some."""
    for name in _EXTRA_ERROR_MODULES:
        importlib.import_module(name)
    for info in pkgutil.walk_packages(mailshot.__path__, "mailshot.", onerror=lambda _n: None):
        if info.name.rsplit(".", 1)[-1] == "errors":
            importlib.import_module(info.name)

    def order(spec: ErrorSpec) -> tuple[int, str]:
        rank = _PART_ORDER.index(spec.part) if spec.part in _PART_ORDER else len(_PART_ORDER)
        return rank, spec.code

    return sorted(CATALOGUE.values(), key=order)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def catalogue_markdown(specs: list[ErrorSpec]) -> str:
    """The catalogue as the Markdown document ``docs/ERRORS.md``."""
    lines = [
        "# Error catalogue",
        "",
        "Every error mailshot reports has a stable code, a sentence for people and a fix. "
        "Words in braces are filled in when the error happens.",
        "",
        "This file is generated by `mailshot errors --markdown`; edit the `define(...)` calls, "
        "not this file.",
    ]
    part = None
    for spec in specs:
        if spec.part != part:
            part = spec.part
            lines += ["", f"## {part}", "", "| Code | HTTP | Message | Fix |", "|---|---|---|---|"]
        lines.append(
            f"| `{spec.code}` | {spec.status} | {_cell(spec.message)} | {_cell(spec.fix)} |"
        )
    return "\n".join(lines) + "\n"


def errors(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown table of docs/ERRORS.md.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of the screen."),
    ] = None,
) -> None:
    """List every error mailshot can report: its code, HTTP status, message and fix."""
    specs = load_catalogue()
    if markdown or output is not None:
        text = catalogue_markdown(specs)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            console.print(f"Wrote {len(specs)} errors to {output}.")
        return
    table = Table(title=f"Error catalogue ({len(specs)} errors)")
    for header in ("Code", "HTTP", "Part", "Message", "Fix"):
        table.add_column(header, overflow="fold")
    for spec in specs:
        table.add_row(spec.code, str(spec.status), spec.part, shown(spec.message), shown(spec.fix))
    console.print(table)


def version() -> None:
    """Print mailshot's version."""
    typer.echo(f"mailshot {__version__}")
