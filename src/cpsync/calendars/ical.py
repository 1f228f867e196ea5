"""One contest as a single-event VCALENDAR, the body of a CalDAV resource (RFC 5545).

The feed builder in `contests.ics` works on `Contest` rows and whole calendars; a CalDAV
resource holds exactly one event built from a `DesiredEvent`, with the user's reminders
and colour. UID and SEQUENCE follow the feed's rules so a client that sees both agrees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Alarm, Calendar, Event

from cpsync.calendars.errors import PermanentCalendarError
from cpsync.calendars.plan import DesiredEvent
from cpsync.contests.ics import PLATFORM_LABELS, PRODID, event_uid

# RFC 7986 COLOR takes a CSS3 colour name; these are the nearest to Google's colorIds.
CSS_COLOURS: dict[str, str] = {
    "1": "slateblue",
    "2": "mediumseagreen",
    "3": "darkorchid",
    "4": "salmon",
    "5": "gold",
    "6": "orangered",
    "7": "deepskyblue",
    "8": "dimgray",
    "9": "royalblue",
    "10": "forestgreen",
    "11": "red",
}


def build_event_calendar(event: DesiredEvent, *, stamp: datetime) -> bytes:
    """The resource body, or PermanentCalendarError when the event cannot be written as
    iCalendar (a CR or LF in a URL stored before the parsers checked URLs): the sink
    then fails that one event, and the run goes on with the others."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    try:
        calendar.add_component(_vevent(event, stamp))
        body: bytes = calendar.to_ical()
    except ValueError as exc:
        raise PermanentCalendarError(f"cannot be written as iCalendar: {exc}") from exc
    return body


def _vevent(event: DesiredEvent, stamp: datetime) -> Event:
    vevent = Event()
    vevent.add("uid", event_uid(event.platform, event.key))
    vevent.add("dtstamp", stamp.astimezone(UTC))
    vevent.add("last-modified", stamp.astimezone(UTC))
    # Revisions start at 1; SEQUENCE at 0, as in the ICS feed.
    vevent.add("sequence", max(event.revision - 1, 0))
    vevent.add("summary", event.summary)
    vevent.add("description", _description(event))
    vevent.add("location", event.url)
    vevent.add("url", event.url)
    vevent.add("dtstart", event.start.astimezone(UTC))
    vevent.add("dtend", event.end.astimezone(UTC))
    vevent.add("categories", [PLATFORM_LABELS.get(event.platform, event.platform)])
    vevent.add("status", "CONFIRMED")  # cancelled contests are deleted, not pushed
    if event.colour in CSS_COLOURS:
        vevent.add("color", CSS_COLOURS[event.colour])
    for minutes in event.reminders:
        vevent.add_component(_alarm(event, minutes))
    return vevent


def _description(event: DesiredEvent) -> str:
    if event.url in event.description:
        return event.description
    return f"{event.description}\n{event.url}".strip()


def _alarm(event: DesiredEvent, minutes: int) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", event.summary)
    alarm.add("trigger", timedelta(minutes=-minutes))
    return alarm
