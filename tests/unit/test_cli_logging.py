"""Logging: one event per line, JSON when asked, and never an API key's secret."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from mailshot.core.logs import configure, mask_secrets
from mailshot.core.settings import Settings

CRM_TOKEN = "mscrm_0123456789ab_Zx9-Q_abcdefghijklmnopqrstuvwxyzABCDEFG"
ESP_TOKEN = "msesp_ba9876543210_s3cr3t-_PART_of_the_key_000000000000000"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_mailshot_handler", False)]:
        root.removeHandler(handler)


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_mask_keeps_the_public_id_and_hides_the_secret() -> None:
    masked = mask_secrets(f"using {CRM_TOKEN} and {ESP_TOKEN}.")
    assert masked == "using mscrm_0123456789ab_*** and msesp_ba9876543210_***."
    assert mask_secrets("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert mask_secrets("nothing secret here") == "nothing secret here"


def test_json_lines_carry_time_level_logger_message_and_extras(stream: io.StringIO) -> None:
    configure(_settings(log_json=True), stream=stream)
    log = logging.getLogger("mailshot.test")
    log.info("synchronised %s", "April", extra={"job_id": 7, "recipients": 1234})
    log.warning("second event")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = orjson.loads(lines[0])
    assert first["level"] == "INFO"
    assert first["logger"] == "mailshot.test"
    assert first["message"] == "synchronised April"
    assert first["job_id"] == 7 and first["recipients"] == 1234
    assert first["time"].endswith("Z")
    assert orjson.loads(lines[1])["message"] == "second event"


def test_secrets_never_reach_a_line_in_either_format(stream: io.StringIO) -> None:
    for as_json in (True, False):
        configure(_settings(log_json=as_json), stream=stream)
        log = logging.getLogger("mailshot.test")
        log.info("key %s", CRM_TOKEN, extra={"key": ESP_TOKEN, "nested": {"k": [CRM_TOKEN]}})
        log.info(f"inline {ESP_TOKEN}")
        try:
            raise RuntimeError(f"refused {CRM_TOKEN}")
        except RuntimeError:
            log.exception("failed")
    text = stream.getvalue()
    assert "Zx9-Q" not in text and "s3cr3t" not in text
    assert "mscrm_0123456789ab_***" in text and "msesp_ba9876543210_***" in text


def test_text_lines_are_one_event_per_line_with_extras(stream: io.StringIO) -> None:
    configure(_settings(log_level="DEBUG"), stream=stream)
    logging.getLogger("mailshot.x").debug("lease taken", extra={"unit": 3, "kind": "chunk"})
    (line,) = stream.getvalue().splitlines()
    assert "DEBUG" in line and "mailshot.x: lease taken" in line
    assert "kind=chunk" in line and "unit=3" in line


def test_configure_twice_keeps_one_handler_and_applies_the_level(stream: io.StringIO) -> None:
    configure(_settings(), stream=stream)
    configure(_settings(log_level="WARNING"), stream=stream)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_mailshot_handler", False)]
    assert len(ours) == 1
    logging.getLogger("mailshot.y").info("hidden")
    logging.getLogger("mailshot.y").warning("shown")
    assert stream.getvalue().count("\n") == 1 and "shown" in stream.getvalue()


def test_control_characters_from_data_cannot_drive_the_terminal_or_forge_a_line(
    stream: io.StringIO,
) -> None:
    name = "Evil\x1b[31m\u202e\x9b2J\nFORGED ERROR the ESP is down"
    for as_json in (False, True):
        configure(_settings(log_json=as_json), stream=stream)
        log = logging.getLogger("mailshot.test")
        log.warning("mailshot %s failed", name, extra={"path": "/crm/\x1b]0;x\x07"})
        try:
            raise RuntimeError(name)
        except RuntimeError:
            log.exception("unexpected")
    text = stream.getvalue()
    for char in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert char not in text
    lines = text.splitlines()
    assert not any(line.startswith("FORGED") for line in lines)
    assert "Evil\\x1b[31m\\u202e\\x9b2J\\nFORGED" in text
    assert "  Traceback (most recent call last):" in lines  # a traceback keeps its lines
    first_json = next(line for line in lines if line.startswith("{"))
    assert orjson.loads(first_json)["message"] == f"mailshot {name} failed"
