// List the occurrences of every VEVENT of many feeds, with both ical.js and node-ical.
//
// Used by tests/test_feed_recurrence.py, which keeps one Node process for the whole run.
// Each line on stdin is a request, answered by one line on stdout:
//   {"window": ["2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z"], "feeds": ["BEGIN:VCALENDAR...", ...]}
//   → one entry per feed: {"ical.js": {uid: [occurrence, ...]}, "node-ical": {...}}, an
//     occurrence being {"date": "2024-05-18"} (all-day) or {"utc": seconds since the epoch};
//     a parser that throws gives {"error": "..."} instead.
// Occurrences start within [window[0], window[1]). Run with TZ=UTC.
import readline from "node:readline";

import ICAL from "ical.js";
import nodeIcal from "node-ical";

const LIMIT = 2000;

function inWindow(ms, from, to) {
  return ms >= from.getTime() && ms < to.getTime();
}

function withIcaljs(text, from, to) {
  const calendar = new ICAL.Component(ICAL.parse(text));
  const result = {};
  for (const component of calendar.getAllSubcomponents("vevent")) {
    const event = new ICAL.Event(component);
    const starts = [];
    const iterator = event.iterator();
    for (let next = iterator.next(); next && starts.length < LIMIT; next = iterator.next()) {
      if (next.isDate) {
        const day = next.toString();
        const ms = Date.parse(`${day}T00:00:00Z`);
        if (ms >= to.getTime()) break;
        if (ms >= from.getTime()) starts.push({ date: day });
      } else {
        const ms = next.toUnixTime() * 1000;
        if (ms >= to.getTime()) break;
        if (inWindow(ms, from, to)) starts.push({ utc: ms / 1000 });
      }
      if (!event.isRecurring()) break;
    }
    result[event.uid] = starts;
  }
  return result;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function withNodeIcal(text, from, to) {
  const data = nodeIcal.sync.parseICS(text);
  const result = {};
  for (const event of Object.values(data)) {
    if (event.type !== "VEVENT") continue;
    const instances = nodeIcal.expandRecurringEvent(event, { from, to });
    result[event.uid] = instances
      .map((instance) => (instance.isFullDay ? { date: isoDay(instance.start) } : { utc: instance.start.getTime() / 1000 }))
      .filter((o) => (o.date ? inWindow(Date.parse(`${o.date}T00:00:00Z`), from, to) : inWindow(o.utc * 1000, from, to)));
  }
  return result;
}

function safely(parse, text, from, to) {
  try {
    return parse(text, from, to);
  } catch (error) {
    return { error: String(error && error.stack ? error.stack : error) };
  }
}

function answer(line) {
  const input = JSON.parse(line);
  const from = new Date(input.window[0]);
  const to = new Date(input.window[1]);
  return input.feeds.map((text) => ({
    "ical.js": safely(withIcaljs, text, from, to),
    "node-ical": safely(withNodeIcal, text, from, to),
  }));
}

for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim()) {
    process.stdout.write(JSON.stringify(answer(line)) + "\n");
  }
}
