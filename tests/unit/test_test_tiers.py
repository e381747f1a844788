"""Tests in tiers: ``tests/unit`` does no I/O (no files, sockets, threads, processes or
databases: those tests belong in ``tests/integration``), and test helpers that are not
fixtures live in ``tests/support``."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
#: What a unit test may not touch: files it writes, threads, sockets, processes, databases,
#: real servers, and the clock's sleeps (reading the repository's own text is allowed).
_IO = re.compile(
    r"\b(tmp_path|tmpdir|threading\.Thread|socket\.|subprocess|time\.sleep|asyncio\.sleep"
    r"|make_engine|make_unpooled_engine|create_engine|TestClient|smtp_server|open\(|"
    r"write_text|write_bytes)\b"
)


def test_unit_tests_do_no_io() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{n}: {line.strip()}"
        for path in sorted((TESTS / "unit").glob("*.py"))
        if path.name != Path(__file__).name
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _IO.search(line)
    ]
    assert offenders == []


def test_helpers_live_in_support() -> None:
    tiers = ("unit", "integration", "e2e", "browser")
    helpers = [
        str(path.relative_to(TESTS))
        for tier in tiers
        for path in sorted((TESTS / tier).glob("*.py"))
        if not path.name.startswith(("test_", "conftest", "__init__"))
    ]
    helpers += [p.name for p in TESTS.glob("*.py") if p.name not in ("conftest.py", "__init__.py")]
    assert helpers == []
