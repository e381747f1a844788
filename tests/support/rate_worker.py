"""One sending process for the global rate-limit test:
``python -m tests.support.rate_worker DB_URL PORT FIRST COUNT RATE [--local]``
sends COUNT envelopes (keys from FIRST) to the SMTP server on PORT through a relay of RATE
messages per second, limited by the database (``--local``: by this process only, the
control). It prints ``ready`` and starts when it reads a line; at the end it prints the
outcomes and the claims as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.esp.sending.engine import deliver
from mailshot.esp.sending.ratelimit import DbRateLimiter, LocalRateLimiter
from tests.support.sending import envelopes, relay


async def main(url: str, port: int, first: int, count: int, rate: float) -> None:
    engine = make_engine(url)
    local = "--local" in sys.argv
    limiter = LocalRateLimiter() if local else DbRateLimiter(make_sessionmaker(engine))
    items = [
        e.__class__(e.key + first, e.mail_from, e.rcpt_to.replace("user", f"p{first}-"), e.data)
        for e in envelopes(count)
    ]
    settings = relay(port, name="shared", connections=3, messages_per_second=rate)

    async def source():  # type: ignore[no-untyped-def]
        for item in items:
            yield item

    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    outcomes: Counter[str] = Counter()
    async for result in deliver(source(), [settings], limiter):
        outcomes[str(result.outcome)] += 1
    await limiter.aclose()
    claims = getattr(limiter, "claims", None)
    print(json.dumps({"outcomes": outcomes, "claims": claims}))
    engine.dispose()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], int(a[1]), int(a[2]), int(a[3]), float(a[4])))
