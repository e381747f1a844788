"""A JSON response rendered with orjson, for error bodies and the hot paths that build their
payload by hand (recipient chunks). Ordinary endpoints return Pydantic models instead."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
