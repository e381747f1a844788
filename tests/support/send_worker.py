"""A send worker in its own process, for the SIGKILL tests: ``python -m
tests.support.send_worker SETTINGS_JSON`` runs one :class:`SendRunner` until killed."""

from __future__ import annotations

import asyncio
import sys
import threading

import orjson

from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.esp.sending.runner import SendRunner


def main() -> None:
    settings = Settings(**orjson.loads(sys.argv[1]))
    sessions = make_sessionmaker(make_engine(settings.esp_db_url()))
    runner = SendRunner(sessions, settings, poll_seconds=0.05)
    print("ready", flush=True)
    asyncio.run(runner.run(threading.Event()))


if __name__ == "__main__":
    main()
