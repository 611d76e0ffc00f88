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


def texted_code(phone: str) -> str:
    """The verification code last texted to ``phone`` (national digits) by the console provider,
    which the live server, in this process, keeps in its outbox."""
    import re

    from scheduler.channels.sms.console import OUTBOX

    for number, text in reversed(OUTBOX):
        found = re.search(r"验证码为(\d{6})", text)
        if number == f"+86{phone}" and found:
            return found.group(1)
    raise AssertionError(f"no code was texted to {phone}")


def fill_registration(page: Page, name: str, phone: str, *, texts: bool = False) -> None:
    """Register on an event's page as a person does with ``REGISTRATION_VERIFY_PHONE=sms``: name and
    number, "Text me a code", the code from the text, texts if wanted, the privacy notice's box, then
    "Register" (works with JavaScript on or off: the code button is a ``formaction``)."""
    import re

    form = page.locator("form:has(input[name=phone])")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=phone]").fill(phone)
    with page.expect_navigation():
        form.get_by_role("button", name=re.compile("获取验证码|Text me a code")).click()
    form = page.locator("form:has(input[name=phone])")
    assert form.locator("input[name=name]").input_value() == name  # what was typed stays
    form.locator("input[name=code]").fill(texted_code(phone))
    if texts:
        form.locator("input[name=channels][value=sms]").check()
    form.locator("input[name=consent]").check()
    with page.expect_navigation():
        form.get_by_role("button", name=re.compile("^(报名|Register)$")).click()
