"""Settings defaults and validation; timestamps that refuse naive datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from mailshot.core.clock import require_aware
from mailshot.core.db.engine import normalise_url
from mailshot.core.settings import Settings


def test_defaults_need_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.crm_db_url().startswith("sqlite:///")
    assert s.esp_db_url().endswith("esp.db")
    assert s.crm_base_url() == "http://127.0.0.1:8000/crm"


def test_environment_and_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "conf.toml"
    cfg.write_text("[mailshot]\nport = 9100\nchunk_size = 777\n", encoding="utf-8")
    monkeypatch.setenv("MAILSHOT_CONFIG", str(cfg))
    monkeypatch.setenv("MAILSHOT_PORT", "9200")
    s = Settings()
    assert s.chunk_size == 777  # from the file
    assert s.port == 9200  # the environment wins


def test_heartbeat_must_be_shorter_than_lease() -> None:
    with pytest.raises(ValidationError, match="heartbeat_seconds"):
        Settings(lease_seconds=5, heartbeat_seconds=10)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        require_aware(datetime(2026, 1, 1))
    assert require_aware(datetime(2026, 1, 1, tzinfo=UTC)).tzinfo is UTC


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
