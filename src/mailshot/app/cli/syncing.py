"""``mailshot sync`` (press Synchronise, optionally follow it to the end) and
``mailshot queue`` (what the sync queue holds, in the order it will be served).

Both talk to the CRM over HTTP only, like any other client of its API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

from mailshot.app.cli import api as api_module
from mailshot.app.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    RemoteError,
    console,
    fail,
    json_text,
    load_settings,
    show_error,
    shown,
)
from mailshot.app.cli.errors import CLI_SYNC_TIMEOUT
from mailshot.contracts.states import FINAL_SYNC_STATES, JobState, SyncState
from mailshot.core.errors import AppError

#: A mailshot's sync states that end a ``--wait``.
FINAL_STATES = FINAL_SYNC_STATES

CrmUrlOption = Annotated[
    str | None,
    typer.Option(
        "--crm-url",
        help="Base URL of the CRM (default: MAILSHOT_CRM_URL, or this machine's `serve`).",
    ),
]


def _open(crm_url: str | None) -> api_module.CrmApi:
    settings = load_settings()
    try:
        return api_module.open_api(settings, crm_url)
    except AppError as exc:
        fail(exc)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _rate(progress: dict[str, Any]) -> str:
    rate = progress.get("rate_per_second")
    return f"{rate:,.0f}/s" if isinstance(rate, int | float) and rate > 0 else "-"


def _describe_state(progress: dict[str, Any]) -> str:
    state = str(progress.get("state") or "?")
    job_state = progress.get("job_state")
    position = progress.get("queue_position")
    if state == SyncState.QUEUED and position:
        return f"queued (position {position})"
    if job_state and job_state not in (state, JobState.COMPLETED):
        return f"{state} ({job_state})"
    return state


def _show_last_error(progress: dict[str, Any]) -> None:
    error = progress.get("last_error")
    if isinstance(error, dict) and error.get("code"):
        show_error(str(error["code"]), str(error.get("message", "")), str(error.get("fix") or ""))
    elif progress.get("summary"):
        console.print(shown(str(progress["summary"])))


class _Follower:
    """Polls a mailshot's progress and draws it, until it reaches a final state."""

    def __init__(self, crm: api_module.CrmApi, mailshot: dict[str, Any], job_id: Any) -> None:
        self.crm = crm
        self.mailshot = mailshot
        self.job_id = job_id
        self.last_state = ""
        self.last_error: str | None = None

    def _note_changes(self, progress: dict[str, Any], say: Callable[[str], None]) -> None:
        job_id = progress.get("job_id")
        if job_id is not None and self.job_id is not None and job_id != self.job_id:
            say(f"Job {shown(self.job_id)} was superseded by job {shown(job_id)}; following it.")
            self.job_id = job_id
        state = _describe_state(progress)
        if state != self.last_state:
            say(f"  {shown(state)}")
            self.last_state = state
        error = progress.get("last_error")
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        if code and code != self.last_error and progress.get("state") not in FINAL_STATES:
            retry = progress.get("next_retry_at")
            when = f"; retrying at {retry}" if retry else "; retrying"
            say(shown(f"  {code}: {error.get('message', '')}{when}"))
        self.last_error = code

    def follow(self, timeout: float | None, interval: float) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[state]}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.fields[total_text]} recipients"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task: TaskID = bar.add_task(
                "sync", total=None, state=SyncState.QUEUED, total_text="?", rate="-", eta="-"
            )
            while True:
                progress = self.crm.progress(int(self.mailshot["id"]))
                self._note_changes(progress, bar.console.print)
                total = progress.get("recipients_total")
                bar.update(
                    task,
                    total=total if isinstance(total, int) and total > 0 else None,
                    completed=progress.get("recipients_written") or 0,
                    state=shown(_describe_state(progress)),
                    total_text=f"{total:,}" if isinstance(total, int) else "?",
                    rate=_rate(progress),
                    eta=_duration(progress.get("eta_seconds")),
                )
                ours = progress.get("job_id") in (None, self.job_id)
                if progress.get("state") in FINAL_STATES and ours:
                    return progress
                if deadline is not None and time.monotonic() >= deadline:
                    raise AppError(
                        CLI_SYNC_TIMEOUT,
                        name=self.mailshot.get("name"),
                        state=progress.get("state"),
                        seconds=f"{timeout:g}",
                    )
                time.sleep(interval)


def _report_end(mailshot: dict[str, Any], progress: dict[str, Any]) -> int:
    name = shown(str(mailshot.get("name")))
    state = progress.get("state")
    if state == SyncState.SYNCHRONISED:
        written = progress.get("recipients_written") or progress.get("recipients_total") or 0
        excluded = progress.get("excluded_total") or 0
        campaign = progress.get("esp_campaign_id")
        console.print(
            f"[green]Synchronised[/] '{name}': {written:,} recipients in the ESP"
            + (f" (campaign {shown(str(campaign))})" if campaign else "")
            + f", {excluded:,} left out."
        )
        return EXIT_OK
    console.print(f"[red]The sync of '{name}' {shown(state)}.[/]")
    _show_last_error(progress)
    return EXIT_ERROR


def sync(
    mailshot: Annotated[
        str, typer.Argument(help="The mailshot: its id, or its exact name (quote it).")
    ],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Follow the sync with a progress bar until it ends; exit 0 when "
            "synchronised, 1 when failed or cancelled.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="With --wait: give up waiting after this many seconds (exit 3; the "
            "sync carries on).",
            min=0,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="With --wait: seconds between progress checks.", min=0.05)
    ] = 0.5,
    crm_url: CrmUrlOption = None,
) -> None:
    """Press Synchronise on a mailshot: queue it for the ESP, and optionally wait for it."""
    crm = _open(crm_url)
    try:
        found = crm.find_mailshot(mailshot)
        answer = crm.synchronise(int(found["id"]))
        job_id = answer.get("job_id")
        position = answer.get("queue_position")
        console.print(
            f"Queued '{shown(str(found.get('name')))}' (mailshot {shown(found['id'])}"
            + (f", job {shown(job_id)}" if job_id is not None else "")
            + (f", position {shown(position)} in the queue" if position else "")
            + ")."
        )
        if not wait:
            console.print("Follow it with `mailshot queue`, or run this again with --wait.")
            return
        progress = _Follower(crm, found, job_id).follow(timeout, interval)
    except AppError as exc:
        fail(exc, EXIT_TIMEOUT if exc.spec is CLI_SYNC_TIMEOUT else EXIT_ERROR)
    except RemoteError as exc:
        fail(exc)
    finally:
        crm.close()
    raise typer.Exit(_report_end(found, progress))


def _progress_text(item: dict[str, Any]) -> str:
    total = item.get("recipients_total")
    written = item.get("recipients_written") or 0
    if not isinstance(total, int):
        return "-"
    percent = f" ({100 * written / total:.0f}%)" if total else ""
    return f"{written:,}/{total:,}{percent}"


def _error_text(item: dict[str, Any]) -> str:
    error = item.get("last_error")
    if isinstance(error, dict) and error.get("code"):
        return f"{error['code']}: {error.get('message', '')}"
    if item.get("last_error_code"):
        return f"{item['last_error_code']}: {item.get('last_error_message') or ''}"
    return ""


def queue(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the queue as JSON instead of a table.")
    ] = False,
    crm_url: CrmUrlOption = None,
) -> None:
    """Show the queued and running syncs, in the order they are served."""
    crm = _open(crm_url)
    try:
        items = crm.queue()
    except (AppError, RemoteError) as exc:
        fail(exc)
    finally:
        crm.close()
    if as_json:
        typer.echo(json_text(items))
        return
    if not items:
        console.print("The sync queue is empty: nothing is queued or running.")
        return
    table = Table(title="Sync queue")
    for header in ("#", "Mailshot", "Job", "State", "Progress", "Attempts", "Last error"):
        table.add_column(header, overflow="fold")
    for index, item in enumerate(items, start=1):
        name = item.get("mailshot_name") or item.get("name")
        mailshot = f"{name} (#{item.get('mailshot_id')})" if name else f"#{item.get('mailshot_id')}"
        table.add_row(
            shown(item.get("queue_position") or item.get("position") or index),
            shown(mailshot),
            shown(item.get("job_id") or item.get("id") or "-"),
            shown(str(item.get("job_state") or item.get("state") or "-")),
            _progress_text(item),
            shown(item.get("attempts") or 0),
            shown(_error_text(item)),
        )
    console.print(table)
