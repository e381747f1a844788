"""``mailshot import people FILE.csv``: import People from a CSV file into the CRM database,
streaming, with a progress bar, a summary and a report of the rejected lines (0600, as it
names people; in CSV, cells a spreadsheet would run as formulas are neutralised).

The command works on the CRM's database directly (like ``migrate``), through the same
service as ``POST /crm/api/v1/imports/people``: rows are matched by email address, applied
in committed batches with a checkpoint, and ``--resume`` carries on an interrupted run.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from sqlalchemy import select

from mailshot.app.cli.common import console, fail, load_settings, shown
from mailshot.core.errors import AppError
from mailshot.core.private_files import open_private
from mailshot.core.safetext import csv_cell

app = typer.Typer(help="Import data into the CRM.", no_args_is_help=True)


def _mapping(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep:
            raise typer.BadParameter(
                f"'{pair}' is not of the form column=field", param_hint="--map"
            )
        out[column.strip()] = target.strip()
    return out


@app.command("people")
def people(
    file: Annotated[
        Path,
        typer.Argument(help="The CSV file (UTF-8, a header line).", exists=True, dir_okay=False),
    ],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="column=field (repeatable); fields: email, first_name, last_name, country, "
            "job_title, organisation_id, no_email. Columns named like a field need none.",
        ),
    ] = None,
    list_id: Annotated[
        int | None, typer.Option("--list", help="Also make the people members of this list.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Carry on the interrupted import of this file.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the rejected lines (.csv or .json); default "
            "FILE.rejected.csv when there are any."
        ),
    ] = None,
) -> None:
    """Import People from a CSV file: upsert by email, report rejected rows."""
    from mailshot.core.db.engine import make_engine, make_sessionmaker
    from mailshot.crm.models import ImportRejection
    from mailshot.crm.services import people_import

    settings = load_settings()
    engine = make_engine(settings.crm_db_url())
    sessions = make_sessionmaker(engine)
    actor = f"cli:{getpass.getuser()}"
    try:
        with sessions() as session:
            if resume:
                run = people_import.unfinished_run_for(session, file)
            else:
                run = people_import.start(
                    session, file, actor=actor, mapping=_mapping(map_ or []), list_id=list_id
                )
            run_id = run.id
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task(f"Importing {shown(file.name)}", total=file.stat().st_size)
                done = people_import.run(
                    session, run_id, file, progress=lambda n: bar.advance(task, n)
                )
            by_reason = people_import.rejected_by_reason(session, run_id)
            rejections = list(
                session.scalars(
                    select(ImportRejection)
                    .where(ImportRejection.run_id == run_id)
                    .order_by(ImportRejection.line)
                )
            )
    except AppError as err:
        fail(err)
    finally:
        engine.dispose()
    console.print(
        f"Import {run_id} of {shown(file.name)}: {done.rows_read:,} rows read, {done.inserted:,} "
        f"people added, {done.updated:,} updated, {done.unchanged:,} unchanged, "
        f"{done.rejected:,} rejected"
        + (f", {done.added_to_list:,} added to list {done.list_id}" if done.list_id else "")
        + "."
    )
    for reason, n in sorted(by_reason.items()):
        console.print(f"  {shown(reason)}: {n:,}")
    if rejections:
        target = report or file.with_name(file.stem + ".rejected.csv")
        fields = ("line", "reason", "message", "email")
        rows = [{f: getattr(r, f) for f in fields} for r in rejections]
        with open_private(target) as out, io.TextIOWrapper(out, "utf-8", newline="") as fh:
            if target.suffix == ".json":
                fh.write(json.dumps(rows, indent=1))
            else:
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                writer.writerows({f: csv_cell(v) for f, v in row.items()} for row in rows)
        console.print(f"Rejected lines, with the reason for each: {shown(target)}")
