"""A walker of the site's pages for the page tests: follows the internal links from some start
pages with one test client, reads each page's forms (and what accessibility checks need), and
calls the test's checks on every page and every form."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

from tests.pages import fresh_token

#: Never walked into: they end the session, are files, or only page through months and years
#: (endless, and the same pages again).
SKIP = ("/logout", ".ics", ".csv", "/api/", "/metrics", "/healthz", "/static/", "month=", "year=", "lang=")
MAX_PAGES = 400
#: Fields a person fills in (labels are checked on these and on selects and textareas).
INPUT_EXEMPT = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class Form:
    """A form as the browser would send it."""

    action: str
    method: str
    multipart: bool
    fields: list[dict[str, str]] = field(default_factory=list)
    selects: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class PageParser(HTMLParser):
    """The page's internal links, forms, headings and fields without a label."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.links: list[str] = []
        self.forms: list[Form] = []
        #: Heading levels in document order (1 for h1 …).
        self.headings: list[int] = []
        #: ids named by a ``<label for>``, and the fields (tag, name, id) without a label around them
        #: or an ``aria-label`` (checked against ``labelled_ids`` by :meth:`unlabelled`).
        self.labelled_ids: set[str] = set()
        self._fields: list[tuple[str, str, str]] = []
        self._in_label = 0
        self._select: str | None = None
        self._textarea: dict[str, str] | None = None

    def unlabelled(self) -> list[str]:
        """The fields a person fills in that have no label (``<label for>``, around, or ``aria-label``)."""
        return [f"<{tag} name={name}>" for tag, name, id_ in self._fields if not id_ or id_ not in self.labelled_ids]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        form = self.forms[-1] if self.forms else None
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.headings.append(int(tag[1]))
        elif tag == "label":
            self._in_label += 1
            if a.get("for"):
                self.labelled_ids.add(a["for"])
        elif tag in ("input", "select", "textarea") and a.get("type", "text").lower() not in INPUT_EXEMPT:
            if not (self._in_label or a.get("aria-label") or a.get("aria-labelledby")):
                self._fields.append((tag, a.get("name", ""), a.get("id", "")))
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(a["href"].split("#")[0])
        elif tag == "form":
            self.forms.append(Form(urljoin(self.base, a.get("action") or self.base), a.get("method", "get").lower(),
                                   "multipart" in a.get("enctype", "")))
        elif form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind == "submit":
                form.buttons.append((a["name"], a.get("value", "")))
            elif kind not in ("checkbox", "radio") or "checked" in a:
                form.fields.append({"name": a["name"], "type": kind, "value": a.get("value", "")})
        elif tag == "textarea" and a.get("name"):
            self._textarea = {"name": a["name"], "type": "textarea", "value": ""}
            form.fields.append(self._textarea)
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            form.selects[a["name"]] = []
        elif tag == "option" and self._select:
            form.selects[self._select].append((a.get("value", ""), "selected" in a))
        elif tag == "button" and a.get("name"):
            form.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = max(0, self._in_label - 1)
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea["value"] += data




class Walker:
    """Walks the site with one client; ``on_page(path, body, parser)`` is called on every page."""

    def __init__(self, client, on_page: Callable[[str, str, PageParser], None]) -> None:
        self.client = client
        self.on_page = on_page

    def walk(self, start: list[str]) -> dict[str, str]:
        """Every page reachable from ``start``: path → HTML."""
        pages: dict[str, str] = {}
        queue = list(start)
        while queue and len(pages) < MAX_PAGES:
            path = queue.pop(0)
            if path in pages or any(s in path for s in SKIP):
                continue
            fresh_token()
            response = self.client.get(path)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            body = response.get_data(as_text=True)
            parser = PageParser(path)
            parser.feed(body)
            parser.close()
            pages[path] = body
            self.on_page(path, body, parser)
            queue.extend(link for link in parser.links if link not in pages)
        return pages
