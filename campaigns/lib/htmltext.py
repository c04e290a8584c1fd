"""Plain-text version of an HTML email body, for the text/plain part when the marketer left it empty.

Readable rather than faithful: paragraphs and table rows become lines, list items get a dash,
links keep their address in parentheses, images their alt text; head, style and script vanish.
"""

import re
from html.parser import HTMLParser

_BLOCK = {
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot", "thead", "tr", "ul",
}  # fmt: skip
_SKIPPED = {"head", "style", "script", "title", "noscript", "template"}
_SPACES = re.compile(r"[ \t\r\f\v\n\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0
        self.link_href: str | None = None
        self.link_text_start = 0
        self.pre_depth = 0

    def _newline(self, count: int = 1) -> None:
        if not self.out:
            return
        tail = "".join(self.out[-4:]).rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n"))
        if have < count:
            self.out.append("\n" * (count - have))

    def handle_starttag(self, tag, attrs):
        if tag in _SKIPPED:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        attributes = dict(attrs)
        if tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self._newline(2)
            self.out.append("-" * 40)
            self._newline(2)
        elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "pre"):
            self._newline(2)
            if tag == "pre":
                self.pre_depth += 1
        elif tag == "li":
            self._newline(1)
            self.out.append("- ")
        elif tag in _BLOCK:
            self._newline(1)
        elif tag in ("td", "th"):
            if self.out and not self.out[-1].endswith(("\n", " ")):
                self.out.append(" ")
        elif tag == "img":
            alt = (attributes.get("alt") or "").strip()
            if alt:
                self.out.append(alt)
        elif tag == "a":
            self.link_href = (attributes.get("href") or "").strip()
            self.link_text_start = len(self.out)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == "a" and self.link_href is not None:
            href, self.link_href = self.link_href, None
            text = "".join(self.out[self.link_text_start :]).strip()
            shown = href.removeprefix("mailto:")
            if href and not href.startswith(("#", "javascript:")) and shown != text:
                self.out.append(f" ({href})" if text else href)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            self._newline(2)
        elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol"):
            self._newline(2)
        elif tag in _BLOCK:
            self._newline(1)

    def handle_data(self, data):
        if self.skip_depth:
            return
        if self.pre_depth:
            self.out.append(data)
            return
        text = _SPACES.sub(" ", data)
        if not self.out or self.out[-1].endswith(("\n", " ")):
            text = text.lstrip(" ")
        if text:
            self.out.append(text)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body, lines separated by "\\n", ending with one newline."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    lines = [line.rstrip() for line in "".join(builder.out).split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""
