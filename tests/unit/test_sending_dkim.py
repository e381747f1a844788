"""DKIM signatures of rendered messages verified by dkimpy (RSA-2048 and Ed25519), the
headers they cover, and a message altered after signing failing verification."""

from __future__ import annotations

from functools import cache

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailshot.esp.sending.compose import compile_message
from mailshot.esp.sending.dkim import (
    DkimConfig,
    DkimKeyError,
    DkimSigner,
    dns_record,
    relaxed_body,
    sign_with_dkimpy,
)
from tests.support.sending_samples import check_wire_form, content, context, parse, recipient


@cache
def _pem(algorithm: str) -> bytes:
    key = (
        rsa.generate_private_key(65537, 2048)
        if algorithm == "rsa-sha256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _config(algorithm: str) -> DkimConfig:
    return DkimConfig("shop.example.com", "mail2026", _pem(algorithm), algorithm)  # type: ignore[arg-type]


def _dns(config: DkimConfig):  # type: ignore[no-untyped-def]
    record = dns_record(config).encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        assert name == b"mail2026._domainkey.shop.example.com."
        return record

    return lookup


ALGORITHMS = ["rsa-sha256", "ed25519-sha256"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_dkimpy_verifies_the_signature(algorithm: str) -> None:
    config = _config(algorithm)
    compiled = compile_message(content(), context(dkim=config, unsubscribe_mailto=True))
    for person in (
        recipient(),
        recipient(recipient_id=7, first_name="Zoë", last_name="  two  spaces"),
    ):
        data = compiled.render(person).data
        check_wire_form(data)
        assert data.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
        assert dkim.verify(data, dnsfunc=_dns(config))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_signature_covers_the_required_headers(algorithm: str) -> None:
    config = _config(algorithm)
    data = compile_message(content(), context(dkim=config)).render(recipient()).data
    signature = str(parse(data)["DKIM-Signature"])
    tags = dict(
        item.strip().split("=", 1)
        for item in signature.replace("\r\n", "").split(";")
        if "=" in item
    )
    assert tags["c"] == "relaxed/relaxed" and tags["d"] == "shop.example.com"
    assert tags["s"] == "mail2026"
    signed = [h.strip() for h in tags["h"].split(":")]
    assert signed == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
    ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_message_altered_after_signing_fails(algorithm: str) -> None:
    config = _config(algorithm)
    data = compile_message(content(), context(dkim=config)).render(recipient()).data
    lookup = _dns(config)
    assert dkim.verify(data, dnsfunc=lookup)
    assert data.count(b"Newsletter") == 2  # in the footer of each part
    assert not dkim.verify(data.replace(b"Newsletter", b"Newsbetter"), dnsfunc=lookup)
    assert not dkim.verify(
        data.replace(b"List-Unsubscribe-Post: ", b"List-Unsubscribe-Post:  x"), dnsfunc=lookup
    )


def test_a_text_only_message_without_reply_to_verifies() -> None:
    config = _config("ed25519-sha256")
    compiled = compile_message(content(html=None, reply_to=None), context(dkim=config))
    data = compiled.render(recipient()).data
    assert b"reply-to" not in data.split(b"\r\n\r\n")[0].lower()
    assert dkim.verify(data, dnsfunc=_dns(config))


def test_dkimpy_reference_signature_verifies_too() -> None:
    config = _config("rsa-sha256")
    data = compile_message(content(), context()).render(recipient()).data
    signed = sign_with_dkimpy(data, config) + data
    assert dkim.verify(signed, dnsfunc=_dns(config))


def test_relaxed_body_canonicalisation() -> None:
    assert relaxed_body(b"a  b\t c \r\n\r\n\r\n") == b"a b c\r\n"
    assert relaxed_body(b"x \r\n  \r\n") == b"x\r\n"
    assert relaxed_body(b"") == b""


def test_unusable_keys_are_refused_at_compile_time() -> None:
    with pytest.raises(DkimKeyError):
        DkimSigner(DkimConfig("shop.example.com", "s", b"not a key"))
    with pytest.raises(DkimKeyError):  # an Ed25519 key named as RSA
        DkimSigner(DkimConfig("shop.example.com", "s", _pem("ed25519-sha256"), "rsa-sha256"))
    with pytest.raises(DkimKeyError):
        DkimSigner(DkimConfig("shop.example.com", "bad selector", _pem("rsa-sha256")))
    with pytest.raises(DkimKeyError):
        compile_message(content(), context(dkim=DkimConfig("shop.example.com", "s", "junk")))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bodies_with_tabs_runs_of_spaces_and_blank_lines_verify(algorithm: str) -> None:
    config = _config(algorithm)
    text = "a\tb  c   d \n\n  indented\t\n{{ custom.v }}\n\n\n"
    for html in (None, "<p>x  y\t</p>  {{ custom.v }}  \n"):
        compiled = compile_message(content(html=html, text=text), context(dkim=config))
        data = compiled.render(recipient(custom={"v": " v  \t w "})).data
        assert dkim.verify(data, dnsfunc=_dns(config))
        body = data.split(b"\r\n\r\n", 1)[1]
        assert relaxed_body(body) == relaxed_body(body, whitespace_done=True)
