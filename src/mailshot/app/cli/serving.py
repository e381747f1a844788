"""``mailshot serve`` (the embedded default: CRM, ESP and bridge workers on one port, the
workers writing through :mod:`mailshot.app.esp_process`; send workers; with no SMTP relay,
the Outbox's capture server) and ``mailshot worker`` (bridge workers alone). On Ctrl-C the
workers drain first, then the server stops, the Outbox last."""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
import uvicorn

from mailshot.app import runtime_tuning
from mailshot.app.cli.admin import migrate_checked
from mailshot.app.cli.common import (
    EXIT_INTERRUPTED,
    console,
    err_console,
    fail,
    load_settings,
    shown,
)
from mailshot.app.cli.errors import BRIDGE_NOT_CONFIGURED, SERVER_CANNOT_LISTEN
from mailshot.core.errors import AppError
from mailshot.core.logs import configure as configure_logging
from mailshot.core.settings import Settings
from mailshot.esp.outbox import outbox_needed

if TYPE_CHECKING:
    from mailshot.app.demo import DemoResult
    from mailshot.app.provision import ProvisionResult
    from mailshot.bridge.config import BridgeConfig

log = logging.getLogger(__name__)

#: How long the workers get to finish their units when asked to stop.
DRAIN_SECONDS = 10.0
DEFAULT_PORT = Settings.model_fields["port"].default


class Pool(Protocol):
    """What the CLI needs of a bridge worker pool."""

    def start(self) -> None: ...
    def stop(self, timeout: float = ...) -> bool: ...
    def run_forever(self) -> None: ...


def bridge_config(settings: Settings, concurrency: int | None = None) -> BridgeConfig:
    """The bridge's configuration from ``settings`` (keys from the settings or the
    provisioned credentials file); a missing key ends the command with its reason."""
    from mailshot.bridge.config import BridgeConfig
    from mailshot.bridge.errors import BridgeConfigError

    overrides = {} if concurrency is None else {"concurrency": concurrency}
    try:
        return BridgeConfig.from_settings(settings, **overrides)
    except BridgeConfigError as exc:
        fail(AppError(BRIDGE_NOT_CONFIGURED, reason=str(exc)))


def make_pool(settings: Settings, concurrency: int | None = None) -> Pool:
    """A bridge worker pool configured from ``settings``."""
    from mailshot.bridge.worker import WorkerPool

    return WorkerPool(bridge_config(settings, concurrency))


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop signal first drains the workers while it still serves."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.pool: Pool | None = None
        self.send_pool: Pool | None = None
        self._exiting = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exiting:  # a second Ctrl-C: stop now
            self.force_exit = True
            self.should_exit = True
            return
        self._exiting = True
        err_console.print("Stopping: letting the workers finish their units...")
        threading.Thread(target=self._drain, name="mailshot-drain", daemon=True).start()

    def _drain(self) -> None:
        try:
            if self.pool is not None:
                self.pool.stop(DRAIN_SECONDS)
                self.pool = None
            if self.send_pool is not None:
                self.send_pool.stop(DRAIN_SECONDS)
                self.send_pool = None
        finally:
            self.should_exit = True

    def bound_port(self) -> int | None:
        for server in getattr(self, "servers", []) or []:
            for sock in server.sockets:
                port = sock.getsockname()[1]
                if isinstance(port, int):
                    return port
        return None


def _invoked_as() -> str:
    """How the user can call this same ``mailshot`` again: plain ``mailshot`` when that is
    what their PATH finds, else the path they used (e.g. ``.venv/bin/mailshot``)."""
    invoked = Path(sys.argv[0])
    if invoked.name != "mailshot":
        return "mailshot"
    on_path = shutil.which("mailshot")
    if on_path is not None and Path(on_path).resolve() == invoked.resolve():
        return "mailshot"
    try:
        return str(invoked.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(invoked.resolve())


def _banner(
    settings: Settings,
    result: ProvisionResult,
    demo_result: DemoResult | None,
    workers: int,
    esp_pid: int | None = None,
    outbox: str | None = None,
) -> None:
    from mailshot.app import demo as demo_data

    base = settings.base_url()
    console.print(f"\n[bold green]mailshot is running[/] at {base}")
    console.print(f"  CRM pages:    {settings.crm_base_url()}/")
    console.print(f"  ESP pages:    {settings.esp_base_url()}/")
    console.print(f"  CRM API docs: {settings.crm_base_url()}/api/v1/docs")
    console.print(f"  ESP API docs: {settings.esp_base_url()}/api/v1/docs")
    if workers and esp_pid is not None:
        console.print(
            f"  Bridge: {workers} worker(s) in this process, writing to the ESP through"
            f" a second process (pid {esp_pid})"
        )
    elif workers:
        console.print(f"  Bridge: {workers} worker(s) in this process")
    else:
        console.print("  Bridge: not started here; run `mailshot worker` to synchronise")
    if outbox is not None:
        console.print(
            f"  Outbox:       SMTP on {shown(outbox)}; sent mail is kept at "
            f"{settings.esp_base_url()}/outbox"
        )
    if result.admin_password:
        parts = " and ".join(result.password_for)
        console.print(f"\n[bold]First run.[/] Log in to the {parts} as {result.admin_email}")
        console.print(
            f"  with the password [bold]{shown(result.admin_password)}[/] (shown only this once).",
            soft_wrap=True,
        )
    if result.created:
        console.print(
            f"API keys are saved in {shown(result.credentials_file)} (readable by you only)."
        )
    if demo_result is not None:
        prefix = "" if settings.port == DEFAULT_PORT else f"MAILSHOT_PORT={settings.port} "
        command = _invoked_as()
        loaded = "was already there" if demo_result.skipped else "is loaded"
        console.print(f"\n[bold]Demo data {loaded}.[/] Try, in another terminal:")
        for line in (
            f'  {prefix}{command} sync "{demo_data.READY_MAILSHOT}" --wait',
            f'  {prefix}{command} sync "{demo_data.LONG_NAME_MAILSHOT}" --wait',
            "      (120 characters where the ESP accepts 100: refused, with the reason)",
            f"  {prefix}{command} queue",
            f'  {prefix}{command} doctor "{demo_data.READY_MAILSHOT}"',
            f'  {prefix}{command} send "{demo_data.READY_MAILSHOT}" --wait',
            f"      (after its sync: the mail goes to the Outbox, {settings.esp_base_url()}/outbox)"
            if outbox_needed(settings)
            else "      (after its sync: through the configured SMTP relays)",
        ):
            console.print(shown(line), soft_wrap=True)
    console.print("\nPress Ctrl-C to stop.\n")


def _start_send_workers(settings: Settings) -> Pool | None:
    """The send workers of ``serve``: they deliver sends through the relays of the
    settings, or to the Outbox capture server when none is configured."""
    from mailshot.esp.sending.config import effective_relays
    from mailshot.esp.sending.pool import SendWorkerPool

    try:
        pool = SendWorkerPool(settings, settings.send_workers)
        pool.start()
    except Exception:
        log.exception("the send workers could not start")
        return None
    relays = ", ".join(f"{r.name} {r.host}:{r.port}" for r in effective_relays(settings))
    console.print(f"  Sending: {settings.send_workers} send worker(s), through {shown(relays)}")
    return pool


def run_server(
    settings: Settings,
    result: ProvisionResult,
    demo_result: DemoResult | None,
    workers: int,
) -> None:
    """Serve until stopped; start ``workers`` bridge workers once the server is up (writing
    to the ESP through a second process, see :mod:`mailshot.app.esp_process`, unless the
    settings say otherwise)."""
    from mailshot.app.cli.outbox import start_embedded
    from mailshot.app.esp_process import EspProcess
    from mailshot.app.server import create_app
    from mailshot.core.web.server import uvicorn_options

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.log_level == "DEBUG",
        timeout_graceful_shutdown=int(DRAIN_SECONDS),
        **settings.proxy_options(),
        **uvicorn_options(settings),
    )
    server = _Server(config)
    done = threading.Event()
    esp: EspProcess | None = None
    if workers and settings.esp_process and settings.esp_url is None:
        esp = EspProcess()
        esp.start()  # it starts while this server does

    def when_started() -> None:
        nonlocal esp
        while not server.started and not done.is_set():
            time.sleep(0.05)
        if not server.started:
            return
        live = settings
        port = server.bound_port()
        if port is not None and port != settings.port:
            live = settings.model_copy(update={"port": port})
        if esp is not None and not esp.wait_ready():
            log.error("the ESP process did not start: the workers write to this process's ESP")
            esp.stop()
            esp = None
        running = workers
        if workers:
            bridged = live if esp is None else live.model_copy(update={"esp_url": esp.url})
            try:
                server.pool = make_pool(bridged, workers)
                server.pool.start()
            except (Exception, typer.Exit):
                log.exception("the embedded bridge workers could not start")
                running = 0
        if live.send_workers:
            if outbox is not None:  # the port it listens on (settings may say 0: a free one)
                live = live.model_copy(update={"outbox_smtp_port": outbox.port})
            server.send_pool = _start_send_workers(live)
        runtime_tuning.freeze_gc()  # everything is loaded: freeze it, collect less often
        _banner(
            live,
            result,
            demo_result,
            running,
            esp.pid if esp is not None else None,
            outbox.address if outbox is not None else None,
        )

    if workers:
        bridge_config(settings, workers)  # a missing key ends the command here, clearly
    outbox = start_embedded(settings)  # a busy SMTP port ends the command here, clearly
    watcher = threading.Thread(target=when_started, name="mailshot-start", daemon=True)
    watcher.start()
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot listen
        if exc.code:
            fail(AppError(SERVER_CANNOT_LISTEN, host=settings.host, port=settings.port))
    finally:
        done.set()
        watcher.join(timeout=DRAIN_SECONDS)
        if server.pool is not None:
            server.pool.stop(DRAIN_SECONDS)
        if server.send_pool is not None:
            server.send_pool.stop(DRAIN_SECONDS)
        if esp is not None:  # after the workers: they finish their units against it
            esp.stop()
        if outbox is not None:  # last: whatever sent to it has finished
            outbox.stop()
    console.print("mailshot stopped.")


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: MAILSHOT_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on (default: MAILSHOT_PORT, 8000; 0 picks a free one)."),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo data set first (once; idempotent).")
    ] = False,
    demo_people: Annotated[
        int, typer.Option(help="With --demo: how many people the demo data set has.", min=10)
    ] = 3000,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Do not run bridge workers in this process."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="How many syncs the embedded bridge works on at once "
            "(default: MAILSHOT_WORKER_CONCURRENCY, 2).",
            min=1,
            max=64,
        ),
    ] = None,
) -> None:
    """Run the CRM, the ESP and the bridge in one process (the embedded default)."""
    from mailshot.app import demo as demo_data
    from mailshot.app import provision

    runtime_tuning.tune_allocator()  # before any thread starts
    settings = load_settings(host=host, port=port, worker_concurrency=workers)
    configure_logging(settings)
    try:
        migrate_checked(settings)
        result = provision.ensure(settings, migrate=False)
        demo_result = demo_data.load(settings, people=demo_people) if demo else None
    except KeyboardInterrupt:  # before the server runs, Ctrl-C just stops
        err_console.print("Interrupted.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    embedded = settings.embedded_worker and not no_worker
    run_server(settings, result, demo_result, settings.worker_concurrency if embedded else 0)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="How many syncs to work on at once (default: MAILSHOT_WORKER_CONCURRENCY, 2).",
            min=1,
            max=64,
        ),
    ] = None,
) -> None:
    """Run bridge workers until stopped (SIGTERM or Ctrl-C): lease sync work from the CRM
    and write it to the ESP, both over HTTP."""
    runtime_tuning.tune_allocator()  # before any thread starts
    settings = load_settings(worker_concurrency=concurrency)
    configure_logging(settings)
    pool = make_pool(settings, concurrency)
    runtime_tuning.freeze_gc()
    console.print(
        f"Bridge worker(s) started: CRM {settings.crm_base_url()}, ESP {settings.esp_base_url()}."
        " Press Ctrl-C to stop."
    )
    pool.run_forever()
    console.print("Bridge workers stopped.")
