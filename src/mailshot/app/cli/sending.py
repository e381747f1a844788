"""``mailshot send`` (start or schedule a campaign's send over the ESP API, and follow it
with a progress bar) and ``mailshot send-worker`` (send workers against the ESP database)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from mailshot.app import runtime_tuning
from mailshot.app.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    RemoteError,
    console,
    fail,
    load_settings,
    shown,
)
from mailshot.app.cli.errors import CLI_SEND_TIMEOUT
from mailshot.app.cli.esp_api import EspApi, open_esp
from mailshot.app.cli.syncing import _duration
from mailshot.core.errors import AppError
from mailshot.core.logs import configure as configure_logging

FINAL = {"sent", "cancelled", "failed"}


def _counts_text(send: dict[str, Any]) -> str:
    c = send.get("counts") or {}
    return (
        f"sent {c.get('sent', 0):,}  failed {c.get('failed', 0):,}  "
        f"deferred {c.get('deferred', 0):,}  in doubt {c.get('in_doubt', 0):,}"
    )


def _rate(send: dict[str, Any]) -> str:
    rate = send.get("rate_per_second")
    return f"{rate:,.0f}/s" if isinstance(rate, int | float) and rate > 0 else "-"


def follow(
    esp: EspApi, send: dict[str, Any], timeout: float | None, interval: float
) -> dict[str, Any]:
    """Poll the send until it is sent, cancelled or failed, drawing its progress."""
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[state]}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task: TaskID = bar.add_task(
            "send", total=send.get("total") or 0, state="", counts="", rate="-", eta="-"
        )
        while True:
            send = esp.get_send(int(send["id"]))
            bar.update(
                task,
                total=send.get("total") or 0,
                completed=send.get("done") or 0,
                state=shown(send.get("state")),
                counts=_counts_text(send),
                rate=_rate(send),
                eta=_duration(send.get("eta_seconds")),
            )
            if send.get("state") in FINAL:
                return send
            if deadline is not None and time.monotonic() >= deadline:
                raise AppError(
                    CLI_SEND_TIMEOUT,
                    send_id=send["id"],
                    state=send.get("state"),
                    seconds=f"{timeout:g}",
                )
            time.sleep(interval)


def _report(send: dict[str, Any]) -> int:
    c = send.get("counts") or {}
    console.print(
        f"Send {shown(send['id'])} {shown(send.get('state'))}: {send.get('total', 0):,} "
        f"recipients; {_counts_text(send)}, suppressed {c.get('suppressed', 0):,}, "
        f"cancelled {c.get('cancelled', 0):,}."
    )
    if c.get("in_doubt"):
        console.print(
            "Recipients in doubt may or may not have the message: list them with GET "
            f"/esp/api/v1/sends/{send['id']}/recipients?state=in_doubt; resend them with "
            f"POST /esp/api/v1/sends/{send['id']}/resend-in-doubt."
        )
    bad = c.get("failed") or c.get("in_doubt") or send.get("state") != "sent"
    return EXIT_ERROR if bad else EXIT_OK


def send(
    campaign: Annotated[
        str,
        typer.Argument(help="The campaign: its CRM mailshot id, or its exact name (quote it)."),
    ],
    at: Annotated[
        str | None,
        typer.Option(help="Send at this time, with its timezone (2026-01-31T09:00:00Z)."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Follow the send with a progress bar until it ends; exit 0 when every "
            "recipient was sent or suppressed, 1 when any failed or is in doubt.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="With --wait: stop waiting after this many seconds (exit 3).", min=0),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="With --wait: seconds between progress checks.", min=0.05)
    ] = 0.5,
    esp_url: Annotated[
        str | None,
        typer.Option(
            "--esp-url", help="Base URL of the ESP (default: MAILSHOT_ESP_URL, or `serve`'s)."
        ),
    ] = None,
) -> None:
    """Send an Integrated Campaign now (or schedule it with --at), optionally waiting."""
    settings = load_settings()
    try:
        esp = open_esp(settings, esp_url)
    except AppError as exc:
        fail(exc)
    try:
        found = esp.find_campaign(campaign)
        started = esp.send(int(found["crm_mailshot_id"]), at)
        when = f" at {shown(started['scheduled_at'])}" if started.get("scheduled_at") else ""
        console.print(
            f"{'Scheduled' if when else 'Sending'} '{shown(found.get('name'))}'{when}: send "
            f"{shown(started['id'])}, {started.get('total', 0):,} recipients."
        )
        if not wait:
            return
        final = follow(esp, started, timeout, interval)
    except AppError as exc:
        fail(exc, EXIT_TIMEOUT if exc.spec is CLI_SEND_TIMEOUT else EXIT_ERROR)
    except RemoteError as exc:
        fail(exc)
    finally:
        esp.close()
    raise typer.Exit(_report(final))


def send_worker(
    workers: Annotated[
        int | None,
        typer.Option(
            help="Send workers in this process (default: MAILSHOT_SEND_WORKERS, 1).", min=1, max=64
        ),
    ] = None,
) -> None:
    """Run send workers against the ESP database until stopped (Ctrl-C or SIGTERM): they
    deliver the units of every send through the configured relays (or the Outbox)."""
    from mailshot.esp.sending.config import effective_relays
    from mailshot.esp.sending.pool import SendWorkerPool

    runtime_tuning.tune_allocator()
    settings = load_settings()
    configure_logging(settings)
    count = workers or max(1, settings.send_workers)
    pool = SendWorkerPool(settings, count)
    relays = ", ".join(f"{r.name} ({r.host}:{r.port})" for r in effective_relays(settings))
    console.print(f"{count} send worker(s) started, relays: {shown(relays)}. Press Ctrl-C to stop.")
    pool.run_forever()
    console.print("Send workers stopped.")
