"""Importing People from a generated CSV with bad rows: each bad row is reported with its
line and reason, the rest is imported; running it again changes nothing; an interrupted
run resumes from its checkpoint; the API and the CLI do the same."""

from __future__ import annotations

import csv
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import AuditEntry, ImportRejection, MailingListMember, Person
from mailshot.crm.services import people_import
from tests.conftest import Keys

GOOD = 40
#: line -> reason of every bad line the generated file holds.
BAD = {
    3: "no_email",
    5: "invalid_email",
    8: "duplicate_in_file",
    11: "encoding",
    13: "column_count",
    17: "invalid_value",
    20: "duplicate_in_file",
    22: "encoding",  # a NUL byte (PostgreSQL failed the whole import on it)
}


def make_csv(path: Path) -> None:
    """A header and GOOD good rows (p0..), with the bad lines of BAD put in place."""
    lines: list[bytes] = [b"E-mail,first_name,last_name,country,no_email\n"]
    good = (f"p{i}@Example.com,First{i},Last{i},GB,no\n".encode() for i in range(GOOD))
    bad = {
        3: b",Nobody,Here,GB,no\n",
        5: b"not-an-address@@example,Bad,Syntax,GB,no\n",
        8: b"P0@example.com,Again,Dup,GB,no\n",
        11: "caf\u00e9@example.com,Wrong,Encoding,FR,no\n".encode("latin-1"),
        13: b"short@example.com,Too,Few\n",
        17: b"flag@example.com,Bad,Flag,GB,perhaps\n",
        20: b" p1@example.com ,Dup,Again,GB,no\n",
        22: b"nul@example.com,Nu\x00l,Char,GB,no\n",
    }
    while len(lines) < GOOD + len(bad) + 1:
        n = len(lines) + 1
        lines.append(bad[n] if n in bad else next(good))
    path.write_bytes(b"".join(lines))


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))


def _people(s: Session) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in s.execute(select(Person).order_by(Person.id)).scalars()]


def _snapshot(s: Session) -> list[tuple[Any, ...]]:
    cols = (Person.id, Person.email, Person.first_name, Person.updated_at, Person.no_email)
    return [tuple(r) for r in s.execute(select(*cols).order_by(Person.id))]


def test_bad_rows_are_reported_and_the_rest_imported(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "people.csv"
    make_csv(path)
    with sessions() as s:
        # An existing person with the address of p2: matched (case ignored) and updated.
        s.add(
            Person(
                first_name="Old",
                email="P2@EXAMPLE.com",
                email_normalised="p2@example.com",
                email_status="ok",
            )
        )
        s.commit()
        run = people_import.start(s, path, actor="tester")
        done = people_import.run(s, run.id, path, batch_rows=7)
        rejected = dict(
            s.execute(
                select(ImportRejection.line, ImportRejection.reason).where(
                    ImportRejection.run_id == run.id
                )
            ).all()
        )
        assert rejected == BAD
        assert (done.inserted, done.updated, done.unchanged) == (GOOD - 1, 1, 0)
        assert done.rows_read == GOOD + len(BAD) and done.rejected == len(BAD)
        assert done.state == "completed" and done.last_line == GOOD + len(BAD) + 1
        p2 = s.scalars(select(Person).where(Person.email_normalised == "p2@example.com")).one()
        assert (p2.first_name, p2.email) == ("First2", "P2@EXAMPLE.com")
        assert s.scalar(select(func.count()).select_from(Person)) == GOOD
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "people.import")).one()
        assert entry.actor == "tester" and entry.detail is not None
        assert entry.detail["inserted"] == GOOD - 1 and entry.detail["file"] == "people.csv"
        before = _snapshot(s)

        # The same file again: every good row unchanged, the same lines rejected.
        again = people_import.run(s, people_import.start(s, path, actor="tester").id, path)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, GOOD)
        assert again.rejected == len(BAD)
        assert _snapshot(s) == before


def test_an_interrupted_import_resumes_from_its_checkpoint(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "people.csv"
    make_csv(path)
    seen = 0

    def crash_midway(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > path.stat().st_size // 2:
            raise KeyboardInterrupt

    with sessions() as s:
        run = people_import.start(s, path, actor="tester")
        with pytest.raises(KeyboardInterrupt):
            people_import.run(s, run.id, path, batch_rows=5, progress=crash_midway)
        s.rollback()
        half = people_import.get(s, run.id)
        s.refresh(half)
        assert half.state == "running" and 0 < half.last_line < GOOD
        assert s.scalar(select(func.count()).select_from(Person)) == half.inserted
        resumed = people_import.unfinished_run_for(s, path)
        assert resumed.id == run.id
        done = people_import.run(s, run.id, path, batch_rows=5)
        assert done.inserted == GOOD and done.rejected == len(BAD)
        assert s.scalar(select(func.count()).select_from(Person)) == GOOD
        lines = s.scalars(select(ImportRejection.line).where(ImportRejection.run_id == run.id))
        assert sorted(lines) == sorted(BAD)


def test_import_through_the_api_adds_to_a_list(
    crm: TestClient, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "people.csv"
    make_csv(path)
    ml = crm.post("mailing-lists", json={"name": "Imported"}).json()
    r = crm.post(
        "imports/people",
        params={"list_id": ml["id"], "file_name": "people.csv"},
        content=path.read_bytes(),
    )
    assert r.status_code == 202, r.text
    run = crm.get(f"imports/{r.json()['id']}").json()
    assert run["state"] == "completed" and run["inserted"] == GOOD
    assert run["added_to_list"] == GOOD and run["rejected_by_reason"]["duplicate_in_file"] == 2
    page = crm.get(f"imports/{run['id']}/rejections", params={"limit": 3}).json()
    assert [x["line"] for x in page["items"]] == sorted(BAD)[:3] and page["next_cursor"]
    with sessions() as s:
        n = s.scalar(select(func.count()).where(MailingListMember.list_id == ml["id"]))
        assert n == GOOD
    unknown = crm.post("imports/people", params={"map": "Mail=email"}, content=b"a,b\n1,2\n")
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["rule"] == "unknown_column"


def test_the_cli_imports_and_writes_the_report(
    keys: Keys, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailshot.app.cli.main import app

    path = tmp_path / "people.csv"
    make_csv(path)
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", settings.crm_db_url())
    report = tmp_path / "rejected.json"
    result = CliRunner().invoke(app, ["import", "people", str(path), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert f"{GOOD} people added" in result.output and "duplicate_in_file: 2" in result.output
    import json

    assert {r["line"]: r["reason"] for r in json.loads(report.read_text())} == BAD
    resumed = CliRunner().invoke(app, ["import", "people", str(path), "--resume"])
    assert resumed.exit_code == 1 and "IMPORT_NOTHING_TO_RESUME" in resumed.output


def _rejections(s: Session, run_id: int) -> dict[int, str]:
    rows = s.execute(
        select(ImportRejection.line, ImportRejection.reason).where(ImportRejection.run_id == run_id)
    )
    return {int(line): str(reason) for line, reason in rows}


def test_an_unclosed_quote_costs_its_own_line_only(
    crm: TestClient, sessions: sessionmaker[Session]
) -> None:
    """The issue's file: a broken quote four lines from the end used to swallow the rest
    into one last name, and the import said 'completed, rejected 0'."""
    lines = [f"p{i}@example.com,P{i},Last{i}\n" for i in range(10)]
    lines.insert(6, 'tail.bad@example.com,Broken,"tail\n')
    body = ("email,first_name,last_name\n" + "".join(lines)).encode()
    made = crm.post("imports/people", content=body)
    assert made.status_code == 202, made.text
    run = crm.get(f"imports/{made.json()['id']}").json()
    assert run["state"] == "completed"
    assert (run["inserted"], run["rejected"], run["rows_read"]) == (10, 1, 11)
    assert run["rejected_by_reason"] == {"unclosed_quote": 1}
    page = crm.get(f"imports/{run['id']}/rejections").json()["items"]
    assert [(x["line"], x["reason"]) for x in page] == [(8, "unclosed_quote")]
    with sessions() as s:
        names = {e: n for e, n in s.execute(select(Person.email, Person.last_name))}
    assert names == {f"p{i}@example.com": f"Last{i}" for i in range(10)}


def test_a_broken_quote_in_a_large_file_loses_nothing_after_it(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Past the CSV module's field limit (128 KiB) the old reader gave up on the swallowed
    lines with one error and dropped them all."""
    n = 6000
    path = tmp_path / "large.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("email,first_name,last_name\n")
        for i in range(n):
            if i == 100:
                fh.write('broken@example.com,Broken,"tail ' + "x" * 200 + "\n")
            fh.write(f"p{i}@example.com,First{i},{'L' * 40}{i}\n")
    with sessions() as s:
        done = people_import.run(s, people_import.start(s, path, actor="t").id, path)
        assert (done.inserted, done.rejected, done.rows_read) == (n, 1, n + 1)
        assert _rejections(s, done.id) == {102: "unclosed_quote"}
        assert s.scalar(select(func.count()).select_from(Person)) == n


_BROKEN = st.sampled_from(
    [
        'x@example.com,Broken,"tail',  # the line
        '"x@example.com,Broken,tail',
        'x@example.com,"Broken, tail',
        'x@example.com,"Closed"early,X',  # not CSV: text after the closing quote
    ]
)


@hsettings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=st.lists(st.one_of(st.just("good"), _BROKEN), min_size=1, max_size=25),
    trailing_newline=st.booleans(),
)
def test_every_line_is_imported_or_reported(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    kinds: list[str],
    trailing_newline: bool,
) -> None:
    tag = uuid.uuid4().hex[:8]
    lines, good, broken = ["email,first_name,last_name"], {}, set()
    for i, kind in enumerate(kinds):
        if kind == "good":
            good[f"{tag}.{i}@example.com"] = f"Last, {i}"
            lines.append(f'{tag}.{i}@example.com,First,"Last, {i}"')
        else:
            broken.add(len(lines) + 1)
            lines.append(kind.replace("x@", f"{tag}.bad{i}@"))
    path = tmp_path / f"{tag}.csv"
    path.write_text("\n".join(lines) + ("\n" if trailing_newline else ""), encoding="utf-8")
    with sessions() as s:
        done = people_import.run(s, people_import.start(s, path, actor="t").id, path)
        assert (done.inserted, done.rejected) == (len(good), len(broken))
        assert done.inserted + done.rejected == done.rows_read == len(kinds)
        assert set(_rejections(s, done.id)) == broken
        imported = s.execute(
            select(Person.email, Person.last_name).where(Person.email.like(f"{tag}.%"))
        )
        assert {e: n for e, n in imported} == good


def test_the_csv_report_neutralises_formulas_and_is_kept_to_the_owner(
    keys: Keys, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailshot.app.cli.main import app

    path = tmp_path / "people.csv"
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]
    body = "email,first_name\n" + "".join(
        f'"{f.replace(chr(34), 2 * chr(34))}",X\n' for f in formulas
    )
    path.write_text(body + "ok@example.com,Ok\n", encoding="utf-8")
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", settings.crm_db_url())
    report = tmp_path / "rejected.csv"
    old_umask = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, ["import", "people", str(path), "--report", str(report)])
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    with report.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["email"] for r in rows] == ["'" + f for f in formulas]
    for row in rows:
        assert not row["message"].startswith(("=", "+", "-", "@")), row
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
