"""What the benchmark scripts share: a fresh installation (SQLite files in a temporary
folder, or fresh PostgreSQL databases), audiences built with bulk inserts, the real
``mailshot serve`` process, the CRM API as a user calls it, and peak RSS from /proc.

Not a library: imported by ``bench/*.py`` only (``python bench/sync.py`` puts ``bench/`` on
``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import (
    BigInteger,
    String,
    case,
    cast,
    create_engine,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy import text as sql_text

from mailshot.app.provision import ensure
from mailshot.core import credentials
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import SQLITE_PAGE_SIZE, UTCDateTime, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import MailingList, MailingListMember, Mailshot, Organisation, Person

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "MAILSHOT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TERMINAL = ("synchronised", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """The peak resident set size of a live process (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a live process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_peak_rss_mb() -> float:
    return peak_rss_mb(os.getpid()) or 0.0


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by linear interpolation."""
    if len(values) == 1:
        return values[0]
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1])


# ---- an installation --------------------------------------------------------------------
@dataclass
class Install:
    """A fresh installation: its settings, the environment of its processes, its keys."""

    db: str
    folder: Path
    settings: Settings
    env: dict[str, str]
    admin_key: str = ""
    pg_names: list[str] = field(default_factory=list)

    def crm_engine(self) -> Any:
        return make_unpooled_engine(self.settings.crm_db_url())


@contextmanager
def installation(db: str, **extra: Any) -> Iterator[Install]:
    """A fresh, provisioned installation on ``db`` ('sqlite' or 'postgresql'), removed at
    the end (with ``MAILSHOT_BENCH_KEEP_LOG=PATH`` set, the server log is copied there
    first). ``extra`` are further MAILSHOT_* settings for its processes."""
    folder = Path(tempfile.mkdtemp(prefix="mailshot-bench-"))
    port = free_port()
    values: dict[str, Any] = {"data_dir": folder / "data", "port": port, **extra}
    pg_names: list[str] = []
    admin = None
    if db == "postgresql":
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        tag = uuid.uuid4().hex[:8]
        base = PG_ADMIN_URL.rpartition("/")[0]
        with admin.connect() as conn:
            for part in ("crm", "esp"):
                name = f"bench_{tag}_{part}"
                conn.execute(sql_text(f'CREATE DATABASE "{name}"'))
                pg_names.append(name)
                values[f"{part}_database_url"] = f"{base}/{name}"
    elif db != "sqlite":
        raise SystemExit(f"--db must be sqlite or postgresql, not {db!r}")
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSHOT_")}
    env["MAILSHOT_CONFIG"] = str(folder / "none.toml")
    env["MAILSHOT_LOG_LEVEL"] = "WARNING"
    env["MAILSHOT_OUTBOX_SMTP_PORT"] = "0"  # serve's Outbox never collides with port 2525
    for key, value in values.items():
        env[f"MAILSHOT_{key.upper()}"] = str(value)
    inst = Install(db=db, folder=folder, settings=settings, env=env, pg_names=pg_names)
    try:
        ensure(settings)
        creds = credentials.load(settings.credentials_file)
        assert creds.cli_key is not None
        inst.admin_key = creds.cli_key.get_secret_value()
        yield inst
    finally:
        if admin is not None:
            with admin.connect() as conn:
                for name in pg_names:
                    conn.execute(sql_text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        if os.environ.get("MAILSHOT_BENCH_KEEP_LOG"):
            shutil.copy(folder / "serve.log", os.environ["MAILSHOT_BENCH_KEEP_LOG"])
        shutil.rmtree(folder, ignore_errors=True)


# ---- audiences ----------------------------------------------------------------------------
def add_audience(inst: Install, tag: str, n: int, *, shuffled: bool = False) -> int:
    """A mailing list of ``n`` new people (``<tag>.<i>@example.com``, all subscribed) and a
    ready mailshot drawing on it, written with INSERT ... SELECT over a generated series;
    returns the mailshot's id.

    The addresses of people with neighbouring ids are neighbours in address order too
    (``bench.120000`` ... ``bench.129999``), so each chunk of a sync lands in one region of
    the ESP's address index. Real addresses are not ordered like the people's ids: with
    ``shuffled`` each address starts with eight hex digits of a hash of ``i``
    (``<tag>.<hash>.<i>@example.com``), scattering every chunk over the whole index.

    As in a CRM, four people in five are in an organisation (one of ``n // 30``, named
    ``<tag> Organisation <k> Ltd``), the fifth in none."""
    engine = inst.crm_engine()
    now = utcnow()
    people = Person.__table__
    members = MailingListMember.__table__
    stamp = literal(now, UTCDateTime())
    if engine.dialect.name == "postgresql":
        series = select(literal_column("i").label("i")).select_from(
            sql_text(f"generate_series(0, {n - 1}) AS i")
        )
        series = series.subquery("series")
    else:
        cte = select(literal_column("0").label("i")).cte("series", recursive=True)
        series = cte.union_all(select(cte.c.i + 1).where(cte.c.i < n - 1))  # type: ignore[assignment]
    number = cast(series.c.i, String)
    if shuffled:  # Knuth's multiplicative hash: a permutation of 32-bit values
        hashed = (cast(series.c.i, BigInteger) * 2654435761) % 4294967296
        if engine.dialect.name == "postgresql":
            prefix = func.lpad(func.to_hex(hashed), 8, "0")
        else:
            prefix = func.printf("%08x", hashed)
        number = prefix + literal(".") + number
    address = literal(f"{tag}.") + number + literal("@example.com")
    with engine.begin() as conn:
        list_id = conn.execute(
            insert(MailingList.__table__)
            .values(name=f"list {tag}", kind="static", created_at=now, updated_at=now)
            .returning(MailingList.__table__.c.id)
        ).scalar_one()
        orgs = Organisation.__table__
        n_orgs = max(1, n // 30)
        first_org = conn.execute(select(func.coalesce(func.max(orgs.c.id), 0))).scalar_one() + 1
        conn.execute(
            insert(orgs).from_select(
                ["name", "created_at", "updated_at"],
                select(
                    literal(f"{tag} Organisation ") + cast(series.c.i, String) + literal(" Ltd"),
                    stamp,
                    stamp,
                ).where(series.c.i < n_orgs),
            )
        )
        organisation = case(
            (series.c.i % 5 == 4, literal(None, BigInteger)),
            else_=literal(first_org, BigInteger) + series.c.i % n_orgs,
        )
        before = conn.execute(select(func.coalesce(func.max(people.c.id), 0))).scalar_one()
        conn.execute(
            insert(people).from_select(
                [
                    "first_name",
                    "last_name",
                    "email",
                    "email_normalised",
                    "email_status",
                    "no_email",
                    "organisation_id",
                    "created_at",
                    "updated_at",
                ],
                select(
                    literal("First") + cast(series.c.i, String),
                    literal(tag),
                    address,
                    address,
                    literal("ok"),
                    literal(False),
                    organisation,
                    stamp,
                    stamp,
                ),
            )
        )
        conn.execute(
            insert(members).from_select(
                ["list_id", "person_id", "subscribed", "created_at", "updated_at"],
                select(literal(list_id), people.c.id, literal(True), stamp, stamp)
                .where(people.c.id > before)
                .order_by(people.c.id),
            )
        )
        mailshot_id = conn.execute(
            insert(Mailshot.__table__)
            .values(
                name=f"Bench {tag} ({n:,} recipients)",
                subject="Hello",
                from_name="Marketing",
                from_address="news@example.com",
                html="<p>Hello {{first_name}}</p>",
                text="Hello",
                audience_source="mailing_list",
                mailing_list_id=list_id,
                campaign_member_statuses=[],
                mailshot_type="static",
                status="ready",
                sync_with="esp",
                sync_state="not_synchronised",
                created_at=now,
                updated_at=now,
            )
            .returning(Mailshot.__table__.c.id)
        ).scalar_one()
    engine.dispose()
    return int(mailshot_id)


def audience_rows(inst: Install, mailshot_id: int) -> list[tuple[Any, ...]]:
    """The rows a sync of ``mailshot_id`` carries (seq, person, email, names, organisation
    id and name), read from the CRM, for the bulk-insert reference."""
    engine = inst.crm_engine()
    p = Person.__table__
    o = Organisation.__table__
    m = MailingListMember.__table__
    ms = Mailshot.__table__
    with engine.connect() as conn:
        list_id = conn.execute(
            select(ms.c.mailing_list_id).where(ms.c.id == mailshot_id)
        ).scalar_one()
        rows = conn.execute(
            select(
                func.row_number().over(order_by=p.c.id) - 1,
                p.c.id,
                p.c.email,
                p.c.first_name,
                p.c.last_name,
                p.c.organisation_id,
                o.c.name,
            )
            .join(m, m.c.person_id == p.c.id)
            .outerjoin(o, o.c.id == p.c.organisation_id)
            .where(m.c.list_id == list_id)
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def bulk_insert_rate(folder: Path, rows: list[tuple[Any, ...]], runs: int = 3) -> float:
    """Rows/s of an executemany of ``rows`` into a fresh SQLite file, in one transaction
    (WAL, synchronous=NORMAL and the page size, like the application's own SQLite files:
    with SQLite's default 4 KiB pages this reference ran 5-10 % slower): the best of
    ``runs`` runs, so a run slowed by the machine's other work does not flatter a ratio
    taken against it."""
    rates = [_bulk_insert_once(folder, rows) for _ in range(runs)]
    print(
        "bulk-insert reference runs (rows/s): " + ", ".join(f"{r:,.0f}" for r in rates),
        file=sys.stderr,
    )
    return max(rates)


def _bulk_insert_once(folder: Path, rows: list[tuple[Any, ...]]) -> float:
    path = folder / f"reference-{uuid.uuid4().hex[:6]}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE recipients (seq INTEGER, person_id INTEGER, email TEXT,"
        " first_name TEXT, last_name TEXT, organisation_id INTEGER, organisation TEXT)"
    )
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO recipients VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    path.unlink()
    return len(rows) / elapsed


# ---- the running system -----------------------------------------------------------------
@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def pids(self) -> dict[str, int]:
        """The server's processes by name: ``mailshot serve`` and, when it started one, the
        ESP process its workers write to (``mailshot.app.esp_process``)."""
        out = {"mailshot serve": self.process.pid}
        for child in child_pids(self.process.pid):
            out["ESP process" if len(out) == 1 else f"child {child}"] = child
        return out

    def peak_rss_mb(self) -> dict[str, float | None]:
        """Peak RSS of each of the server's processes (read while they run)."""
        return {name: peak_rss_mb(pid) for name, pid in self.pids().items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each of the server's processes."""
        return {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids().items()}


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started from any of its threads (Linux: /proc)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return sorted(int(c) for task in tasks for c in (task / "children").read_text().split())
    except OSError:
        return []


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two :meth:`Served.cpu_seconds` readings."""
    return {name: round(after[name] - before.get(name, 0.0), 1) for name in after}


@contextmanager
def serve(inst: Install, *args: str) -> Iterator[Served]:
    """``mailshot serve`` (CRM, ESP and the embedded bridge workers, which write to the ESP
    through a second process unless told otherwise), as a user runs it; waits until it
    answers and has started its workers; stops it at the end."""
    log = inst.folder / "serve.log"
    exe = Path(sys.executable).with_name("mailshot")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailshot.app.cli.main"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "serve", *args], env=inst.env, cwd=inst.folder, stdout=out, stderr=out
        )
    served = Served(proc, inst.settings.base_url(), log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mailshot serve exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mailshot serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        # The embedded workers (and the ESP process they write to) start once the server
        # listens; the banner, last, says they run.
        while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mailshot serve did not start its workers:\n{log.read_text()}")
            time.sleep(0.05)
        time.sleep(0.5)  # as a user would press Synchronise: not in the server's first instant
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class CrmApi:
    """The CRM API as a user calls it (the provisioned admin CLI key)."""

    def __init__(self, inst: Install) -> None:
        self.http = httpx.Client(
            base_url=f"{inst.settings.crm_base_url()}/api/v1",
            headers={"Authorization": f"Bearer {inst.admin_key}"},
            timeout=60,
        )

    def synchronise(self, mailshot_id: int) -> tuple[float, dict[str, Any]]:
        """Press Synchronise; answer the request's latency (s) and the status it returned."""
        started = time.perf_counter()
        r = self.http.post(f"/mailshots/{mailshot_id}/synchronise")
        elapsed = time.perf_counter() - started
        if r.status_code != 202:
            raise RuntimeError(f"Synchronise answered {r.status_code}: {r.text}")
        out: dict[str, Any] = r.json()
        return elapsed, out

    def status(self, mailshot_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self.http.get(f"/mailshots/{mailshot_id}/sync").json()
        return out

    def wait(self, mailshot_id: int, timeout: float = 600, poll: float = 0.25) -> dict[str, Any]:
        """Poll until the mailshot's sync has ended; answer its final status. The benchmarks
        take their times from the job's own timestamps (:meth:`seconds_to_finish`), so the
        poll can be as slow as a user's page: polling many times a second would itself load
        the server being measured."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(mailshot_id)
            if st["state"] in TERMINAL:
                return st
            if time.monotonic() > deadline:
                raise RuntimeError(f"sync of mailshot {mailshot_id} did not end: {st}")
            time.sleep(poll)

    def job_times(self, job_id: int) -> dict[str, datetime]:
        """The job's own timestamps (the CRM's database clock), read once."""
        job = self.http.get(f"/sync/jobs/{job_id}").json()
        return {
            k: datetime.fromisoformat(job[k])
            for k in ("requested_at", "started_at", "running_at", "finished_at")
            if job.get(k)
        }

    @staticmethod
    def seconds_to_finish(at: dict[str, datetime], request_seconds: float) -> float:
        """Seconds from pressing Synchronise to the job's end: the whole Synchronise
        request as the client timed it, plus the job's ``requested_at`` to ``finished_at``
        (``at``: :meth:`job_times`). ``requested_at`` is stamped inside that request, so
        this overstates by the part of the request after it (a few ms), never understates."""
        return request_seconds + (at["finished_at"] - at["requested_at"]).total_seconds()

    @staticmethod
    def phases(at: dict[str, datetime]) -> dict[str, float]:
        """Seconds of a job's phases, from its own timestamps (``at``: :meth:`job_times`):
        waiting in the queue, the prepare step (snapshot, campaign), the chunks, and the
        finalize step."""
        out = {}
        if "started_at" in at:
            out["queued"] = (at["started_at"] - at["requested_at"]).total_seconds()
        if "running_at" in at and "started_at" in at:
            out["prepare"] = (at["running_at"] - at["started_at"]).total_seconds()
        if "finished_at" in at and "running_at" in at:
            out["chunks_and_finalize"] = (at["finished_at"] - at["running_at"]).total_seconds()
        return {k: round(v, 3) for k, v in out.items()}

    def close(self) -> None:
        self.http.close()


# ---- profiles -----------------------------------------------------------------------------
def start_profile(pid: int, path: str) -> subprocess.Popen[bytes]:
    """Sample ``pid`` with py-spy (``pip install py-spy``) into ``path`` (collapsed stacks,
    one line per stack, ``bench/top.py`` summarises them). With
    ``MAILSHOT_BENCH_PROFILE_GIL=1`` only the thread holding the GIL is sampled."""
    exe = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(exe),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--threads",
            "--subprocesses",
            "--output",
            path,
            "--nonblocking",
            *(["--gil"] if os.environ.get("MAILSHOT_BENCH_PROFILE_GIL") else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(2)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
