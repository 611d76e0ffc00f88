"""Helpers of the browser tests (fixtures are in ``conftest.py``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importable without playwright (the tests are skipped then)
    from playwright.sync_api import Page

#: Where :func:`screenshot` saves, for the README.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot(page: Page, name: str) -> Path | None:
    """Save a full-page PNG ``docs/screenshots/<name>.png`` when ``SCREENSHOTS=1``; else do nothing.

    ``SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser`` refreshes the README's pictures
    (Chinese text needs a CJK font on the machine, e.g. Debian's ``fonts-wqy-microhei``).
    """
    if os.environ.get("SCREENSHOTS", "") in ("", "0"):
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def page_width(page: Page) -> int:
    """The document's scroll width: more than the viewport means the page scrolls sideways."""
    return int(page.evaluate("document.documentElement.scrollWidth"))


def too_wide_elements(page: Page, width: int) -> list[str]:
    """The innermost elements reaching past ``width`` pixels, as ``tag[name] (right edge px)``."""
    return list(page.evaluate(
        """width => [...document.body.querySelectorAll('*')]
            .filter(e => e.getBoundingClientRect().right > width + 0.5)
            .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > width + 0.5))
            .map(e => e.tagName.toLowerCase() + (e.name ? `[name=${e.name}]` : '')
                      + ` (${Math.round(e.getBoundingClientRect().right)} px)`)""",
        width,
    ))


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the form at /login (the browser sends the form's CSRF token)."""
    page.goto(base_url + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
