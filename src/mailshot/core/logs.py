"""Logging for every mailshot process (:func:`configure`): one event per line, text or JSON
(``log_json``), with API-key secrets and bearer tokens masked (:func:`mask_secrets`) and
control characters from data escaped."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from mailshot.core.safetext import json_safe, plain
from mailshot.core.settings import Settings

__all__ = ["JsonFormatter", "SecretFilter", "TextFormatter", "configure", "mask_secrets"]

#: API keys of either part: the prefix and public id stay, the secret goes.
_KEY_RE = re.compile(r"\b(ms(?:crm|esp))_([0-9A-Za-z]+)_[A-Za-z0-9_\-]+")
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9_\-.~+/=]+")

#: The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "color_message", "taskName"}

_HANDLER_MARK = "_mailshot_handler"


def mask_secrets(text: str) -> str:
    """Hide the secret part of every API key and bearer token in ``text``."""
    if "ms" not in text and "earer" not in text:
        return text
    text = _BEARER_RE.sub(r"\1 ***", text)
    return _KEY_RE.sub(r"\1_\2_***", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class SecretFilter(logging.Filter):
    """Rewrites a record so that no secret survives in its message, arguments or extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = mask_secrets(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, _mask_value(value))
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-01-31T09:00:00.000Z INFO  mailshot.bridge: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _timestamp(record),
            f"{record.levelname:<7}",
            f"{record.name}:",
            record.getMessage(),
        ]
        extras = extra_fields(record)
        if extras:
            parts.append(" ".join(f"{k}={_render(v)}" for k, v in sorted(extras.items())))
        line = plain(" ".join(parts))
        more = None
        if record.exc_info:
            more = self.formatException(record.exc_info)
        elif record.stack_info:
            more = self.formatStack(record.stack_info)
        if more:
            # Indented: a line break in an exception's message cannot start a line of its own.
            line += "\n" + textwrap.indent(plain(more, keep_newlines=True), "  ")
        return mask_secrets(line)


def _render(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return f'"{text}"' if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            # The core keys always mean what they say; a clashing extra is renamed.
            event[f"extra_{key}" if key in event else key] = value
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        line = json_safe(orjson.dumps(event, default=str).decode())
        return mask_secrets(line)


def configure(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record of this process to ``stream`` (stderr) in the chosen format.

    Returns the installed handler. Calling it again replaces the handler it installed before.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    handler.addFilter(SecretFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # uvicorn's own loggers propagate to ours (we never let uvicorn configure logging).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # SQL statements and HTTP client chatter stay quiet unless asked for.
    if settings.log_level != "DEBUG":
        for name in ("sqlalchemy.engine", "httpx", "httpcore", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return handler
