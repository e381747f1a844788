"""Render rate of the per-recipient message (``mailshot.esp.sending``): a ~10 KB HTML and
text campaign with 10 tracked links and 4 merge fields, rendered for distinct recipients,
without DKIM and with DKIM (RSA-2048, Ed25519; our signer and dkimpy's for comparison).

Prints one JSON line: per variant, renders per CPU second of the process (one core; the
machine may be shared, so wall time is given too), median of 3 runs; bytes per message,
links, the compile time, and a yardstick measured in the same run: the same message built
with the standard library's ``EmailMessage`` (on a loaded machine, compare ratios).
``--profile`` prints a pyinstrument profile of the render without DKIM instead.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import statistics
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailshot.esp.sending.compose import CompiledMessage, compile_message
from mailshot.esp.sending.dkim import DkimConfig, sign_with_dkimpy
from mailshot.esp.sending.model import MessageContent, Recipient, SendContext

PARAGRAPH = (
    "Our autumn range is here: waterproof jackets, walking boots and warm layers for every"
    " season, tested on the hills and chosen by people who walk them every week. "
)


PRODUCT = "https://shop.example.com/products/"
UTM = "utm_source=mail&utm_campaign=autumn"


def campaign() -> MessageContent:
    links = "".join(
        f'<tr><td style="padding:8px 0;"><a href="{PRODUCT}{i}?{UTM.replace("&", "&amp;")}" '
        f'style="color:#1a73e8;text-decoration:none;">Product {i}: see the details</a></td></tr>\n'
        for i in range(10)
    )
    html = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Autumn</title>'
        "<style>body{font-family:Arial,sans-serif;color:#222;} td{font-size:15px;}</style></head>\n"
        '<body style="margin:0;padding:0;background:#f4f4f4;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">\n'
        '<tr><td><h1 style="font-size:24px;">'
        'Hello {{ first_name | default("there") }},</h1></td></tr>\n'
        + "".join(f"<tr><td><p>{PARAGRAPH * 3}</p></td></tr>\n" for _ in range(12))
        + links
        + "<tr><td><p>Sent to {{ email }} for {{ organisation }} ({{ last_name }}).</p>"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></td></tr>\n'
        "</table>\n</body></html>\n"
    )
    text = (
        'Hello {{ first_name | default("there") }},\n\n'
        + "".join(f"{PARAGRAPH}\n\n" for _ in range(12))
        + "".join(f"Product {i}: {PRODUCT}{i}?{UTM}\n" for i in range(10))
        + "\nSent to {{ email }} for {{ organisation }} ({{ last_name }}).\n"
        "Unsubscribe: {{ unsubscribe_url }}\n"
    )
    return MessageContent(
        subject="Autumn is here, {{ first_name | default('friend') }}",
        from_name="Hill & Dale Outdoor",
        from_address="news@shop.example.com",
        reply_to="help@shop.example.com",
        html=html,
        text=text,
        list_name="Newsletter",
    )


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def context(dkim: DkimConfig | None) -> SendContext:
    return SendContext(
        send_id=42,
        tracking_base_url="https://esp.example.com/esp",
        bounce_domain="bounce.example.com",
        message_id_domain="esp.example.com",
        secret=b"bench-secret-0123456789abcdef0123",
        dkim=dkim,
    )


def recipients(n: int) -> list[Recipient]:
    return [
        Recipient(
            recipient_id=1_000_000 + i,
            contact_id=i,
            crm_person_id=500_000 + i,
            email=f"person{i}@example.org",
            first_name="Zoë" if i % 7 == 0 else f"Ann{i}",
            last_name=f"Smith{i}",
            organisation="Acme Ltd",
        )
        for i in range(n)
    ]


def rate(
    message: CompiledMessage, people: list[Recipient], dkimpy: DkimConfig | None
) -> tuple[float, float]:
    """Renders per CPU second of this process (per core) and per wall-clock second."""
    now = datetime.now(UTC)
    start, cpu = time.perf_counter(), time.process_time()
    for person in people:
        rendered = message.render(person, now=now)
        if dkimpy is not None:
            sign_with_dkimpy(rendered.data, dkimpy)
    n = len(people)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - start)


def stdlib_rate(compiled: CompiledMessage, people: list[Recipient]) -> tuple[float, float]:
    """The reference: the same message built with the standard library's EmailMessage
    (text and HTML already merged, so only building and serialising is timed)."""
    sample = parse_back(compiled.render(people[0]).data)
    text, html = (p.get_content() for p in sample.iter_parts())
    start, cpu = time.perf_counter(), time.process_time()
    for person in people:
        message = EmailMessage()
        message["From"] = sample["From"]
        message["To"] = f"{person.first_name} {person.last_name} <{person.email}>"
        message["Subject"] = sample["Subject"]
        message["Message-ID"] = f"<{person.recipient_id}@esp.example.com>"
        message["List-Unsubscribe"] = sample["List-Unsubscribe"]
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        message.as_bytes()
    n = len(people)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - start)


def parse_back(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=default)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rsa_key = DkimConfig("example.com", "s1", _pem(rsa.generate_private_key(65537, 2048)))
    ed_key = DkimConfig(
        "example.com", "s2", _pem(ed25519.Ed25519PrivateKey.generate()), "ed25519-sha256"
    )
    start = time.perf_counter()
    plain = compile_message(campaign(), context(None))
    compile_ms = (time.perf_counter() - start) * 1000
    people = recipients(args.messages)
    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as profiler:
            rate(plain, people, None)
        print(profiler.output_text(unicode=True, color=False))
        return
    variants = {
        "no_dkim": (plain, None, people),
        "dkim_rsa2048": (compile_message(campaign(), context(rsa_key)), None, people),
        "dkim_ed25519": (compile_message(campaign(), context(ed_key)), None, people),
        # dkimpy signs RSA in pure Python: a few dozen messages tell its rate
        "dkimpy_rsa2048": (plain, rsa_key, people[:30]),
        "dkimpy_ed25519": (plain, ed_key, people[: max(1, len(people) // 10)]),
    }
    result: dict[str, object] = {"messages": args.messages, "runs": args.runs}
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    for name, (message, reference, group) in variants.items():
        runs = [rate(message, group, reference) for _ in range(args.runs)]
        result[f"{name}_per_cpu_s"] = round(statistics.median(r[0] for r in runs))
        result[f"{name}_per_wall_s"] = round(statistics.median(r[1] for r in runs))
    runs = [stdlib_rate(plain, people[:500]) for _ in range(args.runs)]
    result["stdlib_emailmessage_per_cpu_s"] = round(statistics.median(r[0] for r in runs))
    result["stdlib_emailmessage_per_wall_s"] = round(statistics.median(r[1] for r in runs))
    sample = plain.render(people[1]).data
    result["bytes_per_message"] = len(sample)
    result["links"] = len(plain.links)
    result["compile_ms"] = round(compile_ms, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
