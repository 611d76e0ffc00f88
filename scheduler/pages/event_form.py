"""The organizers' event form: its fields per kind, the form ↔ API schema mapping, and the kind's
details as the event pages show them.

The form's values are plain strings. :func:`parse_form` turns them into what the API's
schemas take (``EventCreate`` / ``EventUpdate``, and a kind's details model through
:func:`scheduler.events.kinds.validate_details`): times entered as local date and time in the
event's time zone become aware datetimes, lists entered one item a line become lists. The
schemas and operations then judge the values as they judge the API's; :func:`field_errors`
turns the field paths of their refusals (``details.age_min``, ``details.itinerary.2.time``)
into messages in the page's language, next to the field (naming the line of a list).
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_babel import format_time, gettext, lazy_gettext
from flask_babel.speaklater import LazyString

from scheduler.events.kinds import KINDS, SECTOR_NAMES, Kind
from scheduler.events.models import Event
from scheduler.events.schemas import parse_offset
from scheduler.i18n import current_language, format_local_datetime, pick
from scheduler.orgs.counties import COUNTIES

#: ``2024-07-06T08:30`` (what ``<input type="datetime-local">`` sends), ``2024-07-06 08:30``, or a date alone.
_LOCAL = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]+(\d{1,2}):(\d{2})(?::\d{2})?)?\s*$")
_CLOCK = re.compile(r"^(\d{1,2})[:：](\d{2})$")
#: A list item's parts are separated by ``|`` (or the full-width ``｜``).
_BAR = re.compile(r"\s*[|｜]\s*")
_OFFSET = re.compile(
    r"^(?:(\d+)\s*(?:d|day|days|天|日))?\s*(?:(\d+)\s*(?:h|hour|hours|小时|時))?\s*(?:(\d+)\s*(?:m|min|minutes?|分钟|分))?$", re.I,
)


class LineProblem(ValueError):
    """A line of a list field that cannot be read; the message says how to write it."""


# --- the fields -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lines:
    """How one list of a kind's details is written in its textarea, one item a line."""

    #: The line format, shown under the field.
    help: LazyString
    #: A line → the item (raises :class:`LineProblem`); an item → its line.
    parse: Callable[[str, ZoneInfo], Any]
    show: Callable[[Any, ZoneInfo], str]
    #: What each part of an item must be (the schema's refusal of ``<list>.<n>.<part>``; ``""``: the item).
    parts: Mapping[str, LazyString]
    #: The most items the schema takes.
    most: int


@dataclass(frozen=True)
class Field:
    """One field of the form (and of the event's page, for a kind's details)."""

    #: The form's field name: the schema's name, ``details.<name>`` for a kind's details.
    name: str
    label: LazyString
    #: ``text``, ``longtext``, ``count`` (a whole number), ``moment`` (local date and time),
    #: ``sector``, ``lines``, ``checkbox``, ``org``.
    type: str = "text"
    required: bool = False
    #: What a value must be: the message shown when the schema or an operation refuses it.
    message: LazyString | None = None
    help: LazyString | None = None
    lines: Lines | None = None
    maxlength: int | None = None

    @property
    def key(self) -> str:
        """The name within the details (``age_min``), or the field's name."""
        return self.name.removeprefix("details.")

    @property
    def html_id(self) -> str:
        """The ``id`` of the field's input (``f-details-age_min``)."""
        return "f-" + self.name.replace(".", "-")


def _clock_text(text: str) -> str:
    match = _CLOCK.match(text)
    return f"{int(match[1]):02d}:{match[2]}" if match else text


def _parse_stop(line: str, tz: ZoneInfo) -> dict[str, Any]:
    parts = _BAR.split(line.strip())
    if len(parts) > 3:
        raise LineProblem(gettext("write time | place | note (three parts at most)"))
    stop: dict[str, Any] = {}
    if len(parts) == 3 or (len(parts) == 2 and _CLOCK.match(parts[0])):
        stop["time"] = _clock_text(parts.pop(0))
    stop["place"] = parts[0]
    if len(parts) > 1 and parts[1]:
        stop["note"] = parts[1]
    if not stop.get("time"):
        stop.pop("time", None)
    return stop


def _show_stop(stop: dict[str, Any], tz: ZoneInfo) -> str:
    return " | ".join(part for part in (stop.get("time"), stop.get("place", ""), stop.get("note")) if part)


_SESSION_TIME = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2})[ T]+(\d{1,2}[:：]\d{2})(?:\s*[-–~至]\s*(?:(\d{4}-\d{1,2}-\d{1,2})[ T]+)?(\d{1,2}[:：]\d{2}))?$"
)


def _moment(day: str, clock: str, tz: ZoneInfo) -> str:
    """``2024-05-20``, ``09:00`` in ``tz`` → ISO 8601 with its offset (a bad date: :class:`LineProblem`)."""
    try:
        date = dt.date.fromisoformat("-".join(f"{int(p):02d}" for p in day.split("-")))
        hour, minute = (int(p) for p in _clock_text(clock).split(":"))
        return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=tz).isoformat()
    except ValueError:
        raise LineProblem(gettext("no such date or time")) from None


def county_slug(text: str) -> str:
    """A county named by its slug, Chinese or English name → its slug; any other text as it is."""
    for slug, (zh, en) in COUNTIES.items():
        if text.strip().lower() in (slug, zh, en.lower()):
            return slug
    return text


def county_name(text: str) -> str:
    """A county's name in the page's language (any other text as it is)."""
    names = COUNTIES.get(text)
    return pick(*names) if names else text


def _parse_session(line: str, tz: ZoneInfo) -> dict[str, Any]:
    parts = _BAR.split(line.strip())
    if len(parts) > 4:
        raise LineProblem(gettext("write start – end | title | place | county (four parts at most)"))
    when = _SESSION_TIME.match(parts[0])
    if when is None:
        raise LineProblem(gettext("begin with the start as YYYY-MM-DD HH:MM (and the end as -HH:MM if you like)"))
    session: dict[str, Any] = {"title": parts[1] if len(parts) > 1 else "", "starts_at": _moment(when[1], when[2], tz)}
    if when[4]:
        session["ends_at"] = _moment(when[3] or when[1], when[4], tz)
    if len(parts) > 2 and parts[2]:
        session["venue"] = parts[2]
    if len(parts) > 3 and parts[3]:
        session["county"] = county_slug(parts[3])
    return session


def _local(value: str, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(tz)


def _show_session(session: dict[str, Any], tz: ZoneInfo) -> str:
    start = _local(session["starts_at"], tz)
    when = f"{start:%Y-%m-%d %H:%M}"
    if session.get("ends_at"):
        end = _local(session["ends_at"], tz)
        when += f"-{end:%H:%M}" if end.date() == start.date() else f" - {end:%Y-%m-%d %H:%M}"
    parts = [when, session.get("title", ""), session.get("venue", ""), session.get("county", "")]
    while parts and not parts[-1]:
        parts.pop()
    return " | ".join(parts)


def _parse_name(line: str, tz: ZoneInfo) -> str:
    return line.strip()


def _show_name(name: str, tz: ZoneInfo) -> str:
    return name


_AT_MOST_200 = lazy_gettext("give at most 200 characters")
ITINERARY = Lines(
    help=lazy_gettext("One stop a line: time | place | note, e.g. “09:30 | 江门中微子实验室 | 参观中心探测器”. "
                      "The time (HH:MM) and the note may be left out."),
    parse=_parse_stop, show=_show_stop, most=50,
    parts={"time": lazy_gettext("write the time as HH:MM, e.g. 09:30"),
           "place": lazy_gettext("give the place (at most 200 characters)"),
           "note": lazy_gettext("give a note of at most 2000 characters"),
           "": lazy_gettext("write time | place | note")},
)
SESSIONS = Lines(
    help=lazy_gettext("One session a line: start-end | title | place | county, e.g. "
                      "“2024-05-20 09:00-11:30 | 开幕式 | 江门市科技馆 | 蓬江区”. The end, place and county may be left out."),
    parse=_parse_session, show=_show_session, most=200,
    parts={"starts_at": lazy_gettext("give the start as YYYY-MM-DD HH:MM"),
           "ends_at": lazy_gettext("the end must come after the start"),
           "title": lazy_gettext("give the title (at most 200 characters)"),
           "venue": _AT_MOST_200, "county": _AT_MOST_200,
           "": lazy_gettext("write start-end | title | place | county")},
)
PARTNERS = Lines(
    help=lazy_gettext("One partner a line (a university, lab or enterprise)."),
    parse=_parse_name, show=_show_name, most=100, parts={"": lazy_gettext("give a name of at most 200 characters")},
)
TRACKS = Lines(
    help=lazy_gettext("One track a line."),
    parse=_parse_name, show=_show_name, most=50, parts={"": lazy_gettext("give a name of at most 200 characters")},
)

_WHOLE = lazy_gettext("Give a whole number (0 or more), or leave it empty.")
_THEME = Field("details.theme", lazy_gettext("Theme"), message=lazy_gettext("Give a theme of at most 200 characters."), maxlength=200)

#: Each kind's own fields (its ``details``), in the order of its details model.
DETAIL_FIELDS: dict[Kind, tuple[Field, ...]] = {
    Kind.SCIENCE_CARNIVAL: (
        _THEME,
        Field("details.expected_attendance", lazy_gettext("Expected attendance"), "count", message=_WHOLE),
        Field("details.booths", lazy_gettext("Booths"), "count", message=_WHOLE),
        Field("details.audience", lazy_gettext("Audience"), message=lazy_gettext("Give at most 200 characters."), maxlength=200,
              help=lazy_gettext("Who it is for, e.g. families, pupils.")),
    ),
    Kind.TECH_WEEK: (
        _THEME,
        Field("details.sessions", lazy_gettext("Sessions"), "lines", lines=SESSIONS),
    ),
    Kind.STUDY_TOUR: (
        Field("details.meeting_point", lazy_gettext("Meeting point"), required=True, maxlength=200,
              message=lazy_gettext("Give the meeting point (at most 200 characters).")),
        Field("details.meeting_time", lazy_gettext("Meeting time"), "moment",
              message=lazy_gettext("Give the meeting time as a date and time."),
              help=lazy_gettext("Empty: people meet at the start.")),
        Field("details.age_min", lazy_gettext("Minimum age"), "count", message=lazy_gettext("Give an age from 0 to 120, or leave it empty.")),
        Field("details.age_max", lazy_gettext("Maximum age"), "count", message=lazy_gettext("Give an age from 0 to 120, or leave it empty.")),
        Field("details.itinerary", lazy_gettext("Itinerary"), "lines", lines=ITINERARY),
    ),
    Kind.MATCHMAKING: (
        Field("details.sector", lazy_gettext("Sector"), "sector", required=True, message=lazy_gettext("Choose a sector.")),
        Field("details.partners", lazy_gettext("Partners"), "lines", lines=PARTNERS),
        Field("details.achievements_planned", lazy_gettext("Achievements planned"), "count", message=_WHOLE,
              help=lazy_gettext("Technology achievements to be presented.")),
    ),
    Kind.CONTEST: (
        Field("details.registration_deadline", lazy_gettext("Registration deadline"), "moment", required=True,
              message=lazy_gettext("Give the registration deadline as a date and time."),
              help=lazy_gettext("Registration closes then; reminders go before it.")),
        Field("details.preliminary_at", lazy_gettext("Preliminary"), "moment", message=lazy_gettext("Give a date and time, or leave it empty.")),
        Field("details.final_at", lazy_gettext("Final"), "moment", required=True,
              message=lazy_gettext("Give the final's date and time.")),
        Field("details.award_ceremony_at", lazy_gettext("Award ceremony"), "moment", message=lazy_gettext("Give a date and time, or leave it empty.")),
        Field("details.tracks", lazy_gettext("Tracks"), "lines", lines=TRACKS),
    ),
}

ORG = Field("org", lazy_gettext("Organization"), "org", required=True, message=lazy_gettext("Choose one of your organizations."))
TITLE = Field("title", lazy_gettext("Title"), required=True, maxlength=200, message=lazy_gettext("Give a title (at most 200 characters)."))
STARTS = Field("starts_at", lazy_gettext("Starts"), "moment", required=True,
               message=lazy_gettext("Give the start as a date and time between the years 2000 and 2099."))
ENDS = Field("ends_at", lazy_gettext("Ends"), "moment", message=lazy_gettext("The end must come after the start."),
             help=lazy_gettext("Empty: two hours after the start (the same day when all day)."))
ALL_DAY = Field("all_day", lazy_gettext("All day"), "checkbox", message=lazy_gettext("Tick it or leave it."),
                help=lazy_gettext("Only the dates count; the ends' date is the last day."))
TIMEZONE = Field("timezone", lazy_gettext("Time zone"), maxlength=64, message=lazy_gettext("Give a time zone such as Asia/Shanghai."),
                 help=lazy_gettext("The times above are in this time zone."))
RRULE = Field("rrule", lazy_gettext("Repeats"), maxlength=500,
              message=lazy_gettext("Give a rule such as FREQ=WEEKLY;COUNT=4 (it must end: COUNT or UNTIL), or leave it empty."),
              help=lazy_gettext("Empty for a single event; e.g. FREQ=WEEKLY;COUNT=4 for four weeks in a row."))
VENUE = Field("venue", lazy_gettext("Place"), maxlength=200, message=lazy_gettext("Give at most 200 characters."))
ADDRESS = Field("address", lazy_gettext("Address"), maxlength=300, message=lazy_gettext("Give at most 300 characters."))
LATITUDE = Field("latitude", lazy_gettext("Latitude"), message=lazy_gettext("Give a latitude between -90 and 90, or leave it empty."))
LONGITUDE = Field("longitude", lazy_gettext("Longitude"), message=lazy_gettext("Give a longitude between -180 and 180, or leave it empty."))
CAPACITY = Field("capacity", lazy_gettext("Capacity"), "count",
                 message=lazy_gettext("Give the number of seats (0 to 1,000,000), or leave it empty for no limit."),
                 help=lazy_gettext("Empty: no seat limit. When the seats are taken, people join the waitlist."))
DESCRIPTION = Field("description", lazy_gettext("Description"), "longtext", maxlength=10_000,
                    message=lazy_gettext("Give at most 10,000 characters."))
REMINDERS = Field("reminders", lazy_gettext("Reminders"), "longtext",
                  message=lazy_gettext("Give at most 10 different reminders, each between 5 minutes and 90 days before."))
NO_REMINDERS = Field("no_reminders", lazy_gettext("No reminders"), "checkbox")

#: The fields every kind has, in the form's order (``org`` first, the reminders last).
COMMON_FIELDS = (ORG, TITLE, STARTS, ENDS, ALL_DAY, TIMEZONE, RRULE, VENUE, ADDRESS, LATITUDE, LONGITUDE, CAPACITY,
                 DESCRIPTION, REMINDERS, NO_REMINDERS)
_BY_NAME = {f.name: f for f in COMMON_FIELDS} | {f.name: f for fields in DETAIL_FIELDS.values() for f in fields}

#: Refusals with a message of their own: (field, words in the schema's or operation's message) → message.
_SPECIFIC = (
    ("ends_at", "366 days", lazy_gettext("An event may last at most 366 days.")),
    ("rrule", "366 days", lazy_gettext("A series may span at most 366 days.")),
    ("starts_at", "all_day", lazy_gettext("Give the start as a date and time (or tick “All day”).")),
    ("details.age_min", "must not be above", lazy_gettext("The minimum age must not be above the maximum age.")),
    ("reminders", "listed twice", lazy_gettext("The same reminder is listed twice.")),
)
_STAGES = lazy_gettext("The stages go in this order: registration deadline, preliminary, final, award ceremony.")
_GENERIC = lazy_gettext("This value is not valid.")


def detail_fields(kind: Kind | str) -> tuple[Field, ...]:
    """The kind's own fields."""
    return DETAIL_FIELDS[Kind(kind)]


def sector_choices() -> list[tuple[str, str]]:
    """(value, name in the page's language) of each sector."""
    return [(key, pick(*names)) for key, names in SECTOR_NAMES.items()]


# --- reminder offsets as people write them --------------------------------------------------------

def offset_text(iso: str) -> str:
    """``P1DT12H`` → ``1d 12h``: how the form shows an offset."""
    value = parse_offset(iso)
    days, rest = value.days, value.seconds
    hours, minutes = rest // 3600, rest % 3600 // 60
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


def offset_iso(text: str) -> str | None:
    """``1d 12h``, ``3天``, ``30m`` or ``P1D`` → an ISO 8601 duration, or ``None`` when it is not one."""
    cleaned = text.strip()
    if cleaned.upper().startswith("P"):
        return cleaned.upper()
    match = _OFFSET.match(cleaned)
    if not cleaned or match is None or not any(match.groups()):
        return None
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "T0M" if not days else "")


def offset_words(offset: str) -> str:
    """``P1DT12H`` → "1 day 12 hours" (in the page's language)."""
    value = parse_offset(offset)
    days, hours, minutes = value.days, value.seconds // 3600, value.seconds % 3600 // 60
    parts = []
    if days:
        parts.append(gettext("1 day") if days == 1 else gettext("%(num)s days", num=days))
    if hours:
        parts.append(gettext("1 hour") if hours == 1 else gettext("%(num)s hours", num=hours))
    if minutes:
        parts.append(gettext("1 minute") if minutes == 1 else gettext("%(num)s minutes", num=minutes))
    return " ".join(parts)


def words_list(items: list[str]) -> str:
    """``a, b`` (``a、b`` in Chinese)."""
    return ("、" if current_language() == "zh" else ", ").join(items)


def _default_plan_words(kind: Kind) -> str:
    from scheduler.reminders.plan import CONTEST_PLAN

    if kind == Kind.CONTEST:
        return words_list([before_words(f"{anchor}:{offset}") for anchor, offset in CONTEST_PLAN])
    return words_list([before_words(offset) for offset in KINDS[kind].default_reminders])


def before_words(offset: str) -> str:
    """A planned reminder's offset in words: "3 days before the start" ("…the registration deadline" for a contest)."""
    anchor, _, duration = offset.rpartition(":")
    words = offset_words(duration)
    if anchor == "registration_deadline":
        return gettext("%(offset)s before the registration deadline", offset=words)
    if anchor == "final_at":
        return gettext("%(offset)s before the final", offset=words)
    return gettext("%(offset)s before the start", offset=words)


def reminders_help(kind: Kind | str) -> str:
    """The help under the reminders field, naming the kind's default plan."""
    return gettext(
        "One a line: 3d, 2h or 30m before the start (or 1d 12h). Empty: this kind's default plan (%(plan)s).",
        plan=_default_plan_words(Kind(kind)),
    )


# --- the form's values ----------------------------------------------------------------------------

def default_timezone() -> str:
    """The application's time zone (events are entered in it unless the form says otherwise)."""
    return str(current_app.config["TIMEZONE"])


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default_timezone())


def _local_text(value: dt.datetime, tz: ZoneInfo) -> str:
    return f"{value.astimezone(tz):%Y-%m-%dT%H:%M}"


def blank_values(kind: Kind, org_slug: str | None) -> dict[str, str]:
    """The form of a new event."""
    return {"org": org_slug or "", "timezone": default_timezone()}


def event_values(event: Event) -> dict[str, str]:
    """The form's values for an existing event (times local in its time zone)."""
    tz = ZoneInfo(event.timezone)
    values = {
        "org": event.org.slug, "title": event.title, "description": event.description, "venue": event.venue,
        "address": event.address, "timezone": event.timezone, "rrule": event.rrule or "",
        "latitude": "" if event.latitude is None else repr(event.latitude),
        "longitude": "" if event.longitude is None else repr(event.longitude),
        "capacity": "" if event.capacity is None else str(event.capacity),
        "reminders": "\n".join(offset_text(o) for o in event.reminder_offsets or []),
    }
    if event.all_day:
        values["all_day"] = "y"
        # a datetime-local input shows no date alone: midnight stands for the day (its time is not read)
        values["starts_at"] = f"{event.starts_at.astimezone(tz):%Y-%m-%d}T00:00"
        values["ends_at"] = f"{(event.ends_at.astimezone(tz) - dt.timedelta(days=1)):%Y-%m-%d}T00:00"
    else:
        values["starts_at"], values["ends_at"] = _local_text(event.starts_at, tz), _local_text(event.ends_at, tz)
    if event.reminder_offsets == []:
        values["no_reminders"] = "y"
    details = event.details or {}
    for f in detail_fields(event.kind):
        value = details.get(f.key)
        if value is None:
            continue
        if f.type == "moment":
            values[f.name] = _local_text(dt.datetime.fromisoformat(value), tz)
        elif f.type == "lines":
            assert f.lines is not None
            values[f.name] = "\n".join(f.lines.show(item, tz) for item in value)
        else:
            values[f.name] = str(value)
    return values


def form_values(kind: Kind, form: Mapping[str, str]) -> dict[str, str]:
    """The submitted values of the kind's form (to show it again), nothing else."""
    names = [f.name for f in COMMON_FIELDS] + [f.name for f in detail_fields(kind)]
    return {name: str(form.get(name, "")) for name in names if form.get(name) is not None}


def _local_time(text: str, tz: ZoneInfo, all_day: bool) -> dt.date | dt.datetime | str:
    """A local ``2024-07-06T08:30`` (a date alone when all day) → what the schema takes; else the text,
    which the schema then refuses."""
    match = _LOCAL.match(text)
    if match is None:
        return text
    try:
        date = dt.date(int(match[1]), int(match[2]), int(match[3]))
        if all_day:
            return date
        if match[4] is None:
            return text
        return dt.datetime.combine(date, dt.time(int(match[4]), int(match[5])), tzinfo=tz)
    except ValueError:
        return text


def _number(text: str) -> int | str:
    """A whole number as a number (the details are checked strictly), anything else as the text."""
    cleaned = text.strip().replace(",", "")
    return int(cleaned) if re.fullmatch(r"-?\d{1,12}", cleaned) else text


@dataclass
class Parsed:
    """What the form says, as the API's schema takes it, and what could not even be read."""

    raw: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    #: For each list field, the textarea's line number of each item (to name the line of a refused item).
    line_numbers: dict[str, list[int]] = field(default_factory=dict)


def parse_form(kind: Kind, form: Mapping[str, str]) -> Parsed:
    """The form's strings → the body of ``POST /api/v1/events`` (every field, ``kind`` included)."""
    get = lambda name: str(form.get(name) or "")  # noqa: E731
    tz_name = get("timezone").strip() or default_timezone()
    tz = _zone(tz_name)
    all_day = bool(get("all_day"))
    parsed = Parsed(raw={
        "kind": kind.value, "org": get("org"), "title": get("title"), "description": get("description"),
        "venue": get("venue"), "address": get("address"), "all_day": all_day, "timezone": tz_name,
        "rrule": get("rrule").strip() or None,
    })
    raw = parsed.raw
    raw["starts_at"] = _local_time(get("starts_at"), tz, all_day)
    raw["ends_at"] = _local_time(get("ends_at"), tz, all_day) if get("ends_at").strip() else None
    for name in ("latitude", "longitude", "capacity"):
        raw[name] = get(name).strip() or None
    raw["reminders"] = _reminders(get("reminders"), bool(get("no_reminders")), parsed)
    details: dict[str, Any] = {}
    for f in detail_fields(kind):
        text = get(f.name)
        if not text.strip():
            continue
        if f.type == "count":
            details[f.key] = _number(text)
        elif f.type == "moment":
            value = _local_time(text, tz, False)
            details[f.key] = value.isoformat() if isinstance(value, dt.datetime) else text
        elif f.type == "lines":
            assert f.lines is not None
            items, numbers = [], []
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    items.append(f.lines.parse(line, tz))
                except LineProblem as problem:
                    parsed.errors.setdefault(f.name, gettext("Line %(line)s: %(problem)s", line=number, problem=str(problem)))
                    break
                numbers.append(number)
            details[f.key], parsed.line_numbers[f.name] = items, numbers
        else:
            details[f.key] = text
    raw["details"] = details
    return parsed


def _reminders(text: str, none: bool, parsed: Parsed) -> list[str] | None:
    """The reminder offsets: ``[]`` for none at all, ``None`` for the kind's default plan."""
    if none:
        return []
    offsets = []
    for number, line in enumerate(re.split(r"[\n,，;；]", text), start=1):
        if not line.strip():
            continue
        iso = offset_iso(line)
        try:
            if iso is None:
                raise ValueError(line)
            parse_offset(iso)
        except ValueError:
            parsed.errors.setdefault("reminders", gettext(
                "Line %(line)s: write a reminder as 3d, 2h or 30m (between 5 minutes and 90 days before).", line=number))
            return None
        offsets.append(iso)
    return offsets or None


# --- the schema's refusals, as messages next to the fields ----------------------------------------

def _field_of(path: str) -> tuple[str, list[str]]:
    """``details.itinerary.2.time`` → (``details.itinerary``, [``2``, ``time``])."""
    parts = path.split(".")
    if parts[0] == "details" and len(parts) > 1:
        return f"details.{parts[1]}", parts[2:]
    return parts[0], parts[1:]


def field_errors(fields: Mapping[str, str], parsed: Parsed | None = None) -> tuple[dict[str, str], list[str]]:
    """The refused fields (paths as ``from_validation_error`` names them) → (form field → message in the
    page's language, messages for no field of the form)."""
    errors: dict[str, str] = {}
    general: list[str] = []
    for path, english in fields.items():
        name, rest = _field_of(path)
        f = _BY_NAME.get(name)
        if f is None:
            general.append(gettext("The event could not be saved: %(problem)s", problem=english))
            continue
        if name in errors:
            continue
        if f.lines is not None:
            errors[name] = _line_message(f, rest, english, parsed)
        elif "must not come before" in english:
            errors[name] = str(_STAGES)
        else:
            specific = next((str(m) for n, words, m in _SPECIFIC if n == name and words in english), None)
            errors[name] = specific or str(f.message or _GENERIC)
    return errors, general


def _line_message(f: Field, rest: list[str], english: str, parsed: Parsed | None) -> str:
    assert f.lines is not None
    if not rest or not rest[0].isdigit():
        return gettext("Give at most %(most)s lines.", most=f.lines.most) if "at most" in english else str(_GENERIC)
    index = int(rest[0])
    numbers = parsed.line_numbers.get(f.name, []) if parsed else []
    line = numbers[index] if index < len(numbers) else index + 1
    part = rest[1] if len(rest) > 1 else ""
    problem = f.lines.parts.get(part) or f.lines.parts.get("") or _GENERIC
    return gettext("Line %(line)s: %(problem)s", line=line, problem=str(problem))


# --- a kind's details, as the event pages show them ------------------------------------------------

@dataclass(frozen=True)
class Shown:
    """One of the kind's details on an event page: its label and a text, or a list of texts."""

    name: str
    label: str
    text: str = ""
    items: tuple[str, ...] = ()
    #: The moment shown, for ``<time datetime>``.
    iso: str | None = None


def _ages(details: Mapping[str, Any]) -> str | None:
    low, high = details.get("age_min"), details.get("age_max")
    if low is not None and high is not None:
        return gettext("%(low)s to %(high)s years old", low=low, high=high)
    if low is not None:
        return gettext("%(low)s years and older", low=low)
    if high is not None:
        return gettext("Up to %(high)s years old", high=high)
    return None


def _itinerary_item(stop: Mapping[str, Any]) -> str:
    text = " ".join(part for part in (stop.get("time"), stop.get("place")) if part)
    return f"{text} — {stop['note']}" if stop.get("note") else text


def _session_item(session: Mapping[str, Any], tz: ZoneInfo) -> str:
    start = _local(session["starts_at"], tz)
    when = format_local_datetime(start, tz)
    if session.get("ends_at"):
        end = _local(session["ends_at"], tz)
        when += "–" + (format_time(end, "short", rebase=False) if end.date() == start.date() else format_local_datetime(end, tz))
    where = " · ".join(county_name(part) if key == "county" else part
                       for key, part in (("venue", session.get("venue")), ("county", session.get("county"))) if part)
    return f"{when} {session.get('title', '')}" + (f" · {where}" if where else "")


def shown_details(event: Event) -> list[Shown]:
    """The kind's details of ``event`` in the page's language, times local in its time zone."""
    tz = ZoneInfo(event.timezone)
    details = event.details or {}
    shown: list[Shown] = []
    for f in detail_fields(event.kind):
        value = details.get(f.key)
        if f.key == "age_min":
            ages = _ages(details)
            if ages:
                shown.append(Shown("ages", gettext("Ages"), ages))
            continue
        if f.key == "age_max" or value in (None, "", []):
            continue
        label = str(f.label)
        if f.type == "moment":
            moment = dt.datetime.fromisoformat(value)
            shown.append(Shown(f.key, label, format_local_datetime(moment, tz), iso=moment.astimezone(tz).isoformat()))
        elif f.key == "itinerary":
            shown.append(Shown(f.key, label, items=tuple(_itinerary_item(stop) for stop in value)))
        elif f.key == "sessions":
            shown.append(Shown(f.key, label, items=tuple(_session_item(s, tz) for s in value)))
        elif f.type == "lines":
            shown.append(Shown(f.key, label, items=tuple(value)))
        elif f.type == "sector":
            shown.append(Shown(f.key, label, pick(*SECTOR_NAMES.get(value, (value, value)))))
        else:
            shown.append(Shown(f.key, label, str(value)))
    if event.kind == Kind.STUDY_TOUR and details.get("meeting_point") and not details.get("meeting_time"):
        start = event.starts_at.astimezone(tz)
        shown.insert(1, Shown("meeting_time", str(lazy_gettext("Meeting time")), format_local_datetime(start, tz), iso=start.isoformat()))
    return shown
