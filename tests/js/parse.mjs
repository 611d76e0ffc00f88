// Read an iCalendar feed on stdin with Mozilla's ical.js; print what it understood as JSON.
//
// Used by tests/test_feed_parsers.py. Times are resolved through the feed's own VTIMEZONEs
// (ical.js looks a TZID up in the calendar); `utc` is the instant in seconds since the epoch,
// so a TZID without a VTIMEZONE (read as floating time) shows up as a wrong instant.
// Run with TZ=UTC so floating times are not shifted by the machine's zone.
import ICAL from "ical.js";

const MAX_OCCURRENCES = 1000;

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function time(value) {
  if (!value) {
    return null;
  }
  return {
    iso: value.toString(), // 2024-06-22T22:00:00, or 2024-05-18 for a DATE
    isDate: value.isDate,
    tzid: value.isDate || !value.zone ? null : value.zone.tzid,
    utc: value.isDate ? null : value.toUnixTime(),
  };
}

function alarm(component) {
  const trigger = component.getFirstPropertyValue("trigger");
  return {
    action: component.getFirstPropertyValue("action"),
    description: component.getFirstPropertyValue("description"),
    trigger: trigger === null ? null : trigger.toString(),
  };
}

function vevent(component) {
  const event = new ICAL.Event(component);
  const occurrences = [];
  if (event.isRecurring()) {
    const iterator = event.iterator();
    for (let next = iterator.next(); next && occurrences.length < MAX_OCCURRENCES; next = iterator.next()) {
      occurrences.push(time(next));
    }
  }
  return {
    uid: event.uid,
    summary: event.summary,
    description: event.description,
    location: event.location,
    status: component.getFirstPropertyValue("status"),
    sequence: event.sequence,
    dtstart: time(event.startDate),
    dtend: time(event.endDate),
    recurring: event.isRecurring(),
    occurrences,
    alarms: component.getAllSubcomponents("valarm").map(alarm),
  };
}

const text = await readStdin();
const calendar = new ICAL.Component(ICAL.parse(text));
const result = {
  name: calendar.name,
  prodid: calendar.getFirstPropertyValue("prodid"),
  version: calendar.getFirstPropertyValue("version"),
  timezones: calendar.getAllSubcomponents("vtimezone").map((tz) => tz.getFirstPropertyValue("tzid")),
  events: calendar.getAllSubcomponents("vevent").map(vevent),
};
process.stdout.write(JSON.stringify(result));
