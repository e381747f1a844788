"""Settings read from the working folder and from a configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

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
