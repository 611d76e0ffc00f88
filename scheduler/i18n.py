"""The pages' languages: simplified Chinese (the default) and English, with Flask-Babel.

The locale of a request is, in order: ``?lang=zh|en`` (which is also remembered in a
long-lived ``lang`` cookie), the ``lang`` cookie, the browser's ``Accept-Language``, else
Chinese. Message ids are the English text; the catalogs are ``translations/<lang>/
LC_MESSAGES/messages.po``, compiled to ``.mo`` by ``make install`` (without them the pages
show the English message ids). When strings change (see the README, "Languages")::

    pybabel extract -F babel.cfg -k lazy_gettext --no-location --sort-output \\
        --project science-event-scheduler --version 0.1.0 -o translations/messages.pot .
    pybabel update -i translations/messages.pot -d translations --ignore-obsolete
    # translate the new entries, clear "fuzzy" flags, then: pybabel compile -d translations

``tests/test_i18n.py`` fails when a string is missing, untranslated, fuzzy or obsolete.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Flask, request
from flask_babel import format_date, format_time, get_locale, refresh
from werkzeug.wrappers import Response

from scheduler import ROOT
from scheduler.extensions import babel

def N_(message: str) -> str:  # noqa: N802  (Babel's keyword for a message translated later)
    """Mark ``message`` for ``pybabel extract``: it is translated where it is shown (``gettext(message)``),
    not where it is made (an API error stays English; the import page shows it in the page's language)."""
    return message


#: The pages' languages, the default first.
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = LANGUAGES[0]
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS = ROOT / "translations"


def _asked() -> str | None:
    """``?lang=`` when it names one of the languages."""
    lang = request.args.get("lang", "")
    return lang if lang in LANGUAGES else None


def select_locale() -> str:
    """The request's language: ``?lang=``, the cookie, ``Accept-Language``, else Chinese."""
    cookie = request.cookies.get(COOKIE, "")
    return _asked() or (cookie if cookie in LANGUAGES else None) or _preferred() or DEFAULT_LANGUAGE


def _preferred() -> str | None:
    """The first language the browser accepts (by quality) that the pages have: ``zh-CN`` is ``zh``."""
    for value, quality in request.accept_languages:  # best first
        language = value.replace("_", "-").split("-", 1)[0].lower()
        if quality > 0 and language in LANGUAGES:
            return language
    return None


def current_language() -> str:
    """``zh`` or ``en`` (the default outside a request)."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT_LANGUAGE


def html_lang() -> str:
    """The ``<html lang>`` value: ``zh-CN`` or ``en``."""
    return "zh-CN" if current_language() == "zh" else "en"


def pick(zh: str | None, en: str | None) -> str:
    """A bilingual record's text in the page's language (the other one when it is empty)."""
    first, second = (zh, en) if current_language() == "zh" else (en, zh)
    return first or second or ""


def switch_language_url(lang: str) -> str:
    """This page's URL (same path and query) with ``lang`` set: the language switch's links."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
    args.append(("lang", lang))
    return f"{request.path}?{urlencode(args)}"


def format_local_datetime(value: dt.datetime, tz: ZoneInfo) -> str:
    """A moment in ``tz`` the page language's way: ``2024年6月22日 09:00`` or ``Jun 22, 2024, 9:00 AM``."""
    local = value.astimezone(tz)
    date = format_date(local, "medium", rebase=False)
    time = format_time(local, "short", rebase=False)
    locale = get_locale()
    pattern = locale.datetime_formats["medium"] if locale is not None else "{1} {0}"
    return str(pattern).format(time, date)


def _forget() -> None:
    """Choose the locale afresh for each request (Flask-Babel keeps it on ``g``, which a request
    shares with an application context pushed around it, as in the tests)."""
    refresh()


def _remember(response: Response) -> Response:
    """``?lang=`` is remembered in a cookie; pages vary with the language asked for."""
    lang = _asked()
    if lang is not None:
        response.set_cookie(
            COOKIE, lang, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax", secure=request.is_secure,
        )
    if response.mimetype == "text/html":
        response.vary.update(("Accept-Language", "Cookie"))
    return response


def init_app(app: Flask) -> None:
    """Bind Flask-Babel (locale selector, the app's time zone) and give templates the helpers."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config.get("TIMEZONE", "Asia/Shanghai"))
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)
    app.before_request(_forget)
    app.after_request(_remember)
    app.jinja_env.globals.update(
        switch_language_url=switch_language_url, current_language=current_language, html_lang=html_lang,
        pick=pick, get_locale=get_locale, LANGUAGES=LANGUAGES,
    )
