"""DKIM signatures (RFC 6376, relaxed/relaxed; RSA-SHA256 and Ed25519-SHA256, RFC 8463)
over the header fields and body a compiled message has just built.

Signed here with ``cryptography`` rather than through dkimpy's ``dkim.sign``, which parses
the whole message again for every recipient; the tests verify these signatures with dkimpy
(``dkim.verify``). :func:`sign_with_dkimpy` is kept as the reference the benchmark compares.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
#: Signed when present, in this order (RFC 8058 asks that both List-Unsubscribe fields are).
SIGNED_HEADERS = (
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
)
_WSP = re.compile(rb"[ \t]+")
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


class DkimKeyError(ValueError):
    """A DKIM configuration that cannot sign (unreadable key, wrong algorithm, bad name)."""


@dataclass(frozen=True, slots=True)
class DkimConfig:
    domain: str
    selector: str
    #: PEM: PKCS#1 or PKCS#8 for RSA (at least 1024 bits), PKCS#8 for Ed25519.
    private_key_pem: str | bytes
    algorithm: Algorithm = "rsa-sha256"
    headers: tuple[str, ...] = SIGNED_HEADERS


def _load(config: DkimConfig) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    pem = config.private_key_pem
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DkimKeyError(f"the DKIM private key cannot be read: {exc}") from None
    if config.algorithm == "rsa-sha256" and isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise DkimKeyError("an RSA DKIM key needs at least 1024 bits (2048 advised)")
        return key
    if config.algorithm == "ed25519-sha256" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DkimKeyError(f"the DKIM private key is not a key for {config.algorithm}")


def relaxed_header(field: bytes) -> bytes:
    """One header field (``Name: value\\r\\n``, perhaps folded) in relaxed form."""
    name, _, value = field.partition(b":")
    value = value[:-2] if value.endswith(b"\r\n") else value
    if b"\r\n" in value or b"\t" in value or b"  " in value:
        value = _WSP.sub(b" ", value.replace(b"\r\n", b""))
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" ") + b"\r\n"


def relaxed_body(body: bytes, whitespace_done: bool = False) -> bytes:
    """The relaxed form of a body; ``whitespace_done``: the body is known to hold no tab,
    no two spaces in a row and no space before a line end (bodies made by ``mime``)."""
    if whitespace_done:
        if body.endswith(b"\r\n") and not body.endswith(b"\r\n\r\n"):
            return body
        body = body.rstrip(b"\r\n")
        return body + b"\r\n" if body else b""
    if b"\t" in body or b"  " in body:
        body = _WSP.sub(b" ", body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    if body.endswith(b" "):
        body = body.rstrip(b" ")
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


class DkimSigner:
    """Signs messages for one configuration; the key is loaded once."""

    __slots__ = ("_key", "_prefix", "_wanted", "config")

    def __init__(self, config: DkimConfig) -> None:
        if not _SELECTOR.fullmatch(config.selector) or not _SELECTOR.fullmatch(config.domain):
            raise DkimKeyError("the DKIM selector or domain is not a DNS name")
        self.config = config
        self._key = _load(config)
        self._wanted = tuple(h.strip().lower() for h in config.headers)
        self._prefix = (
            f"v=1; a={config.algorithm}; c=relaxed/relaxed; d={config.domain}; s={config.selector};"
        )

    def sign(
        self,
        fields: Sequence[tuple[str, bytes]],
        body: bytes,
        timestamp: int,
        canonical: dict[bytes, bytes] | None = None,
        whitespace_done: bool = False,
    ) -> bytes:
        """The ``DKIM-Signature`` field (CRLF-terminated) for a message whose header
        fields are ``fields`` (lower-case name, the field as written) and whose body is
        ``body``. ``canonical`` may hold the relaxed form of fields known in advance;
        ``whitespace_done`` is passed to :func:`relaxed_body`."""
        present = {name: raw for name, raw in fields}
        names = [n for n in self._wanted if n in present]
        hashed = bytearray()
        for name in names:
            raw = present[name]
            relaxed = canonical.get(raw) if canonical is not None else None
            hashed += relaxed if relaxed is not None else relaxed_header(raw)
        bh = base64.b64encode(hashlib.sha256(relaxed_body(body, whitespace_done)).digest()).decode(
            "ascii"
        )
        head = (
            f"DKIM-Signature: {self._prefix}\r\n t={timestamp}; h={':'.join(names)};\r\n"
            f" bh={bh};\r\n b="
        ).encode("ascii")
        hashed += relaxed_header(head + b"\r\n")[:-2]
        signature = base64.b64encode(self._signature(bytes(hashed)))
        lines = [signature[i : i + 72] for i in range(0, len(signature), 72)]
        return head + b"\r\n ".join(lines) + b"\r\n"

    def _signature(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(hashlib.sha256(data).digest())


def dns_record(config: DkimConfig) -> str:
    """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
    key = _load(config)
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"


def sign_with_dkimpy(message: bytes, config: DkimConfig) -> bytes:
    """dkimpy's signature of a whole message (the reference; slower per message)."""
    import dkim  # only the reference path needs it

    key = _load(config)
    if isinstance(key, rsa.RSAPrivateKey):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    else:
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        pem = base64.b64encode(seed)
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line[:1] not in (b" ", b"\t")
    }
    include = [h.encode("ascii") for h in config.headers if h.encode("ascii") in present]
    signature: bytes = dkim.sign(
        message,
        config.selector.encode("ascii"),
        config.domain.encode("ascii"),
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=include,
        signature_algorithm=config.algorithm.encode("ascii"),
    )
    return signature
