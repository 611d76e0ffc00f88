"""Browser tests: Playwright for Python driving Debian's Chromium against the real app on 127.0.0.1.

* ``live_server`` (one per test module) serves ``scheduler.create_app`` with werkzeug's threaded
  server on a free port, on its **own** SQLite file migrated from empty — never the suite's
  transactional test database. The suite's autouse ``db_session`` fixture is switched off for
  these tests (see below) so the server's requests use the application's real session.
* **Time:** the live server runs in this process, so it reads the same injected clock as the
  rest of the suite. The seed data is written with the clock frozen at :data:`tests.conftest.NOW`
  (Saturday 2024-06-15 10:00 +08:00), and every test runs with the suite's autouse ``clock``
  fixture freezing it there too: events are dated relative to that "now" (the study tour on
  2024-06-22, a week later). A test may move ``clock`` and the server follows.
* ``browser`` (one per session) is Chromium headless from ``/usr/bin/chromium`` (override with
  ``CHROMIUM_PATH``); ``page`` is a fresh context (own cookies) at a desktop size and
  ``phone_page`` one at 375×800. We never run ``playwright install``.
* A failing test leaves a screenshot of each of its pages in ``tests/browser/artifacts/``.
* Without the ``playwright`` package or Chromium the tests are skipped, saying which is missing;
  ``.ci/run`` installs Chromium (Debian's ``chromium`` package).
* :func:`tests.browser.helpers.screenshot` saves full-page PNGs to ``docs/screenshots/`` when ``SCREENSHOTS=1`` (for the
  README; Chinese text needs a CJK font installed, e.g. Debian's ``fonts-wqy-microhei``).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from werkzeug.serving import make_server

from scheduler import create_app
from scheduler.extensions import db
from scheduler.util import time as clock_module
from tests.conftest import NOW

try:  # the rest of the suite must run without playwright
    from playwright.sync_api import Browser, Page, Playwright, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"

#: The seeded organizer (a manager of the bureau, so of every organization below it).
ORGANIZER_EMAIL = "organizer@example.org"
ORGANIZER_PASSWORD = "browser-test-password"
CST = dt.timezone(dt.timedelta(hours=8))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}
TIMEOUT_MS = 5_000


def _missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if sync_playwright is None:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests, with the reason in the summary, when Playwright or Chromium is missing."""
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"browser test: {reason}")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so the page fixtures know whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --- the suite's autouse fixtures, adapted --------------------------------------------------------

@pytest.fixture(autouse=True)
def db_session() -> Iterator[None]:
    """Overrides the suite's: no outer transaction, and ``db.session`` stays the application's own
    (the suite's would bind the live server's requests to the suite's test database)."""
    yield None


# --- the live server ---------------------------------------------------------------------------------

@dataclass
class LiveServer:
    """The served application, its address and what was seeded."""

    app: Flask
    url: str
    organizer_email: str = ORGANIZER_EMAIL
    organizer_password: str = ORGANIZER_PASSWORD
    ids: dict[str, int] = field(default_factory=dict)

    def __call__(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on the server."""
        return self.url + path

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` in a request context of the served app (with the real session) and commit."""
        with self.app.test_request_context():
            try:
                result = fn(*args, **kwargs)
                db.session.commit()
                return result
            finally:
                db.session.remove()


def _seed() -> dict[str, int]:
    """The organizations of the demo plan, the year's targets, an organizer, and a few published events."""
    from scheduler.auth.models import Role
    from scheduler.auth.operations import create_user, set_membership
    from scheduler.demo import seed_orgs
    from scheduler.events import operations as events
    from scheduler.targets.operations import seed_city_targets

    orgs = seed_orgs()
    seed_city_targets(2024)
    organizer, _ = create_user(ORGANIZER_EMAIL, ORGANIZER_PASSWORD, name="浏览器测试组织者")
    set_membership(organizer, orgs["jmkjj"], Role.MANAGER)
    tour = events.create_event(
        org=orgs["wyu"], kind="study_tour", title="走进五邑大学智能制造实验室",
        starts_at=dt.datetime(2024, 6, 22, 9, 0, tzinfo=CST), ends_at=dt.datetime(2024, 6, 22, 12, 0, tzinfo=CST),
        venue="五邑大学", address="江门市蓬江区东成村22号", capacity=2,
        details={"meeting_point": "五邑大学南门", "age_min": 10, "age_max": 16},
        description="参观智能制造实验室。Visit the smart-manufacturing lab.",
    )
    carnival = events.create_event(
        org=orgs["xinhui"], kind="science_carnival", title="新会区科普嘉年华",
        starts_at=dt.datetime(2024, 6, 29, 9, 0, tzinfo=CST), ends_at=dt.datetime(2024, 6, 29, 16, 0, tzinfo=CST),
        venue="新会区文化广场", address="江门市新会区", details={"expected_attendance": 5000, "booths": 40},
    )
    for event in (tour, carnival):
        events.publish_event(event)
    db.session.flush()
    return {"organizer": organizer.id, "study_tour": tour.id, "carnival": carnival.id}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real application served on 127.0.0.1 (a free port, threads) on its own migrated SQLite file."""
    database = tmp_path_factory.mktemp("browser") / "live.db"
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "SECRET_KEY": "browser-test-secret",
        "SCHEDULER_MODE": "off",
        "FEED_VERSION_TTL": 0,
        "RATELIMIT_STORAGE_URI": "memory://",
        "OUTBOUND_ALLOWLIST": ["127.0.0.1/32"],
        "SERVER_NAME": None,
        "SMS_PROVIDER": "console",
        # as in production: registering needs a code texted to the number (the console provider's
        # outbox, in this process, is the phone); every browser here shares one address
        "REGISTRATION_VERIFY_PHONE": "sms",
        "RATELIMIT_VERIFICATION": "1000 per minute",
    }
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # The port is known only once bound; nothing reads BASE_URL before the first request.
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        flask_migrate.upgrade()
        db.session.remove()
    live = LiveServer(app=app, url=app.config["BASE_URL"])
    with clock_module.frozen(NOW):
        live.ids = live.run(_seed)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


# --- Playwright -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API (its bundled driver; no downloaded browsers)."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    args = ["--disable-dev-shm-usage", "--disable-gpu"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=30_000)
    yield browser
    browser.close()


def _artifact_name(item: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name).strip("_")


def _new_page(browser: Browser, request: pytest.FixtureRequest, suffix: str, **context_args: Any) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **context_args)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(2 * TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            path = ARTIFACTS / f"{_artifact_name(request.node)}{suffix}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot of the failed test: {path}")
            except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the test's failure
                print(f"no screenshot of the failed test: {exc}")
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new page in its own context (cookies), desktop-sized."""
    yield from _new_page(browser, request, "", viewport=DESKTOP)


@pytest.fixture
def phone_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new page in its own context on a 375×800 phone screen."""
    yield from _new_page(browser, request, "-phone", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
