"""Calendars as other tools write them: UTF-16 and GBK files, a calendar's own X-WR-TIMEZONE."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from scheduler.feeds.importer import ImportRejected, read_calendar

EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//Test//ZH\r\n{head}"
    "BEGIN:VEVENT\r\nUID:e1@other.example\r\nSUMMARY:江门科普讲座\r\n"
    "DTSTART:20240720T140000\r\nDTEND:20240720T160000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "gbk", "gb18030", "utf-8-sig"])
def test_files_in_other_encodings_are_read(ctx, encoding):
    data = EVENT.format(head="").encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # Windows tools write the BOM
    [item] = read_calendar(data, default_kind="science_carnival")
    assert item.title == "江门科普讲座"


def test_a_file_that_is_no_text_says_which_encodings_were_tried(ctx):
    with pytest.raises(ImportRejected) as caught:
        read_calendar(b"\x89PNG\r\n\x1a\n\xff\xfe\xfd binary", default_kind="science_carnival")
    assert "not UTF-8 text (byte 0), nor UTF-16 or GBK/GB18030" in caught.value.problems[0].reason


def test_floating_times_are_read_in_the_calendars_own_zone(ctx):
    [berlin] = read_calendar(EVENT.format(head="X-WR-TIMEZONE:Europe/Berlin\r\n").encode(), default_kind="science_carnival")
    assert berlin.timezone == "Europe/Berlin"
    assert berlin.start == dt.datetime(2024, 7, 20, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 20:00 in Shanghai, not 14:00
    [outlook] = read_calendar(EVENT.format(head="X-WR-TIMEZONE:W. Europe Standard Time\r\n").encode(), default_kind="science_carnival")
    assert outlook.timezone == "Europe/Berlin"
    [unknown] = read_calendar(EVENT.format(head="X-WR-TIMEZONE:Mars/Olympus\r\n").encode(), default_kind="science_carnival")
    assert unknown.timezone == "Asia/Shanghai"  # an unknown name: the app's zone, as without it


SERIES_IN_UTC = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n{head}"
    "BEGIN:VEVENT\r\nUID:weekly@google.com\r\nSUMMARY:周六科普课堂\r\n"
    "DTSTART:20240706T010000Z\r\nDTEND:20240706T030000Z\r\n"
    "RRULE:FREQ=WEEKLY;UNTIL=20240727T010000Z\r\nEXDATE:20240713T010000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_series_anchored_in_utc_is_kept_in_local_time(ctx):
    from scheduler.events.times import occurrence_starts

    [item] = read_calendar(SERIES_IN_UTC.format(head="X-WR-TIMEZONE:Asia/Shanghai\r\n").encode(), default_kind="science_carnival")
    assert item.timezone == "Asia/Shanghai"  # shown and texted as 09:00, not 01:00
    assert item.start == dt.datetime(2024, 7, 6, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    starts = [s.astimezone(ZoneInfo("Asia/Shanghai")) for s in occurrence_starts(item.times.starts_at, item.timezone, item.rrule)]
    assert [s.day for s in starts] == [6, 13, 20, 27] and all((s.hour, s.minute) == (9, 0) for s in starts)
    assert item.exdates == ("2024-07-13T01:00:00+00:00",)  # 13 July left out, as in the source
