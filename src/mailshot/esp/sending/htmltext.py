"""The text part of a campaign that has only HTML: derived once per send from the HTML
template's source, its Jinja constructs carried over untouched, so the text part merges
the same fields. Paragraphs, headings, line breaks, list items and table rows become lines;
a link becomes ``text (URL)`` (a mailto link ``text (address)``); scripts, styles and the
head are dropped. A link marked ``data-mailshot-notrack`` stays untracked in the text too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailshot.esp.sending.links import has_placeholder, protect, restore

_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "hr", "pre"}
)
_LINE = frozenset(
    {"div", "tr", "section", "article", "header", "footer", "center", "dl", "dt", "dd"}
)
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _PARAGRAPH:
            self.out.append("\n\n")
            self.pre += tag == "pre"
        elif tag in _LINE or tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            values = dict(attrs)
            href = (values.get("href") or "").strip()
            if "data-mailshot-notrack" in values and not has_placeholder(href):
                # a Jinja constant: the text part's link search does not see into it
                href = "{{ " + repr(href) + " }}"
            self.links.append((href, len(self.out)))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt and not self.hidden:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _PARAGRAPH:
            self.out.append("\n\n")
            self.pre = max(0, self.pre - (tag == "pre"))
        elif tag in _LINE:
            self.out.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            shown = "".join(self.out[start:]).strip()
            if href.lower().startswith("mailto:"):
                address = href[7:].split("?")[0]
                if address and address not in shown:
                    self.out.append(f" ({address})" if shown else address)
                return
            web = href.lower().startswith(("http://", "https://", "{{ ")) or has_placeholder(href)
            if web and href != shown:
                self.out.append(f" ({href})" if shown else href)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(source: str) -> str:
    """A text template for the HTML template ``source``."""
    protected, pieces = protect(source.replace("\r\n", "\n"))
    parser = _Text()
    parser.feed(protected)
    parser.close()
    text = "".join(parser.out)
    lines = [line.strip(" ") for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return restore(text, pieces) + "\n"
