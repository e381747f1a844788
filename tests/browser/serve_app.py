"""Serve the embedded app for the browser tests, configured from the MAILSHOT_*
environment: ``python -m tests.browser.serve_app``."""

from __future__ import annotations

import uvicorn

from mailshot.server import create_app
from mailshot.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
