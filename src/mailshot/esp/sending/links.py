"""Links of a campaign's templates, found and numbered once per send, and the snippets the
compiler adds (open pixel, unsubscribe footer), all worked on the template's source.

A link is tracked when it is an absolute http(s) URL: the ``href`` of an ``<a>`` in HTML,
and a URL written in the text part. Not tracked: mailto:, tel:, anchors and relative
links, a link holding a merge expression (``{{ ... }}``: the stored link would not be the
one clicked), the unsubscribe link (``{{ unsubscribe_url }}``), a link already under the
tracking base, and an ``<a>`` with the attribute ``data-mailshot-notrack``. Each tracked
``<a>`` gets its own index, in document order; a text URL reuses the index of the first
link with the same URL, or gets the next one. Jinja constructs are set aside (protected)
while the HTML is searched, so nothing inside them is taken for markup.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from mailshot.esp.sending.merge import LINKS_NAME

_JINJA = re.compile(
    r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S
)
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_A_TAG = re.compile(r"<a\s[^>]*>", re.I)
_HREF = re.compile(r"""(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_NOTRACK = re.compile(r"\sdata-mailshot-notrack\b", re.I)
_TEXT_URL = re.compile(f"https?://[^\\s<>\"'{{}}{_OPEN}{_CLOSE}]+", re.I)
_BODY_END = re.compile(r"</body\s*>", re.I)


def protect(source: str) -> tuple[str, list[str]]:
    """``source`` with each Jinja construct replaced by a placeholder, and the constructs."""
    pieces: list[str] = []

    def keep(match: re.Match[str]) -> str:
        pieces.append(match.group(0))
        return f"{_OPEN}{len(pieces) - 1}{_CLOSE}"

    return _JINJA.sub(keep, source), pieces


def restore(text: str, pieces: list[str]) -> str:
    return _PLACEHOLDER.sub(lambda m: pieces[int(m.group(1))], text)


def has_placeholder(text: str) -> bool:
    return _OPEN in text


def trackable(url: str, tracking_base: str) -> bool:
    if not url or has_placeholder(url) or any(c.isspace() for c in url):
        return False
    if url.startswith(tracking_base.rstrip("/") + "/"):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _link_ref(index: int) -> str:
    return f"{{{{ {LINKS_NAME}[{index}] }}}}"


def rewrite_html(source: str, links: list[str], tracking_base: str) -> str:
    """``source`` with every tracked ``href`` replaced by its numbered tracking link;
    appends the original URLs to ``links``."""
    protected, pieces = protect(source)

    def tag(match: re.Match[str]) -> str:
        text = match.group(0)
        if _NOTRACK.search(text):
            return text
        href = _HREF.search(text)
        if href is None:
            return text
        raw = next((g for g in href.groups()[1:] if g is not None), "")
        url = html.unescape(raw).strip()
        if not trackable(url, tracking_base):
            return text
        links.append(url)
        new = f'{href.group(1)}"{_link_ref(len(links) - 1)}"'
        return text[: href.start()] + new + text[href.end() :]

    return restore(_A_TAG.sub(tag, protected), pieces)


def rewrite_text(source: str, links: list[str], tracking_base: str) -> str:
    """``source`` (a text part) with its tracked URLs replaced; new URLs appended."""
    protected, pieces = protect(source)

    def url(match: re.Match[str]) -> str:
        found = match.group(0)
        cut = len(found)
        while cut and (
            found[cut - 1] in ".,;:!?'\"]>"
            or (found[cut - 1] == ")" and found[:cut].count("(") < found[:cut].count(")"))
        ):
            cut -= 1
        candidate, rest = found[:cut], found[cut:]
        after = protected[match.end() : match.end() + 1]
        if not rest and after == _OPEN:
            return found  # a merge expression continues the URL
        if not trackable(candidate, tracking_base):
            return found
        index = links.index(candidate) if candidate in links else len(links)
        if index == len(links):
            links.append(candidate)
        return _link_ref(index) + rest

    return restore(_TEXT_URL.sub(url, protected), pieces)


def insert_before_body_end(source: str, snippet: str) -> str:
    """``snippet`` placed before the last ``</body>`` of ``source`` (or at its end)."""
    protected, pieces = protect(source)
    ends = list(_BODY_END.finditer(protected))
    if not ends:
        return source + snippet
    at = ends[-1].start()
    return restore(protected[:at] + snippet + protected[at:], pieces)
