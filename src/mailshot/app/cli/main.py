"""The ``mailshot`` command: assembles the commands of :mod:`mailshot.app.cli` into one Typer app.

``pyproject.toml`` names :data:`app` as the ``mailshot`` script. Every command and option
carries help text (a test checks it), so ``mailshot --help`` and ``mailshot CMD --help``
are the reference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mailshot.app.cli import admin, doctor, importing, keys, outbox, sending, serving, syncing

app = typer.Typer(
    name="mailshot",
    help="mailshot: a CRM's marketing side, an email-marketing platform (ESP) and the bridge "
    "that synchronises CRM Mailshots into the ESP as Integrated Campaigns.\n\n"
    "Start with `mailshot serve --demo`. Settings come from MAILSHOT_* environment "
    "variables and an optional mailshot.toml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A TOML settings file (default: MAILSHOT_CONFIG, or ./mailshot.toml).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """mailshot's command line."""
    if config is not None:
        os.environ["MAILSHOT_CONFIG"] = str(config)


app.command("serve")(serving.serve)
app.command("worker")(serving.worker)
app.command("sync")(syncing.sync)
app.command("queue")(syncing.queue)
app.command("send")(sending.send)
app.command("send-worker")(sending.send_worker)
app.command("doctor")(doctor.doctor)
app.command("migrate")(admin.migrate)
app.command("provision")(admin.provision_command)
app.command("demo")(admin.demo)
app.command("errors")(admin.errors)
app.command("version")(admin.version)
app.add_typer(importing.app, name="import")
app.add_typer(keys.app, name="keys")
app.add_typer(outbox.app, name="outbox")

if __name__ == "__main__":  # pragma: no cover
    app()
