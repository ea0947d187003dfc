"""Processes that start themselves: timer start events as ``process.timer_start`` jobs.

Publishing a version whose start event is a timer schedules its next
occurrence (:func:`schedule_start`); the job starts an instance of that
version — if it is still the current one — with no human actor (the
history's ``start`` has no actor, then a ``timer`` entry names the start
event and the occurrence), and enqueues the following occurrence in the
same transaction. Each occurrence has its own dedupe key (process, version,
occurrence), so an occurrence starts one instance however often its job
runs or is scheduled.

* A newer version supersedes the schedule: the old version's job finds
  itself superseded and does nothing (and schedules nothing); the new
  version scheduled its own when it was published.
* Catch-up: occurrences missed while no worker ran start **one** instance
  when the worker is back, not one each (a burst of identical reviews
  helps nobody); the missed ones count against the repetitions, and the
  history entry says how many there were.
* ``timeDuration`` counts from the publication; a ``timeDate`` or cycle
  whose occurrences are all in the past when it is published never starts
  (publishing says so as a warning).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.errors import ErrorDetail
from engine.jobs import enqueue
from engine.processes.bpmn import ParsedBpmn
from engine.processes.cycles import Schedule, schedule_of

START = "process.timer_start"


def start_timer(parsed: ParsedBpmn) -> tuple[str, str, str] | None:
    """(start event id, timer kind, value) of a process started by a timer, else None."""
    for event_id, text in parsed.timers.items():
        element = parsed.elements.get(event_id)
        if element is not None and element.kind == "startEvent":
            return event_id, _kind(text), text
    return None


def _kind(text: str) -> str:
    # Publishing checked that the value is a literal of its kind (cycles.check_timer).
    upper = text.strip().upper()
    if upper.startswith("R"):
        return "timeCycle"
    return "timeDuration" if upper.startswith("P") else "timeDate"


def start_schedule(parsed: ParsedBpmn, published_at: dt.datetime) -> Schedule | None:
    found = start_timer(parsed)
    return schedule_of(found[1], found[2], published_at) if found else None


def schedule_start(
    conn: sa.Connection, parsed: ParsedBpmn, version: int, now: dt.datetime
) -> list[ErrorDetail]:
    """Enqueue the first occurrence of a version published at ``now``; a warning if none comes."""
    event, schedule = start_timer(parsed), start_schedule(parsed, now)
    if event is None or schedule is None:
        return []
    index = schedule.upcoming(now)
    if index is None:
        return [
            ErrorDetail(f"#{event[0]}", "every occurrence of this timer is past: it never starts")
        ]
    enqueue_start(conn, parsed.key, version, now, schedule, index, now)
    return []


def enqueue_start(
    conn: sa.Connection,
    key: str,
    version: int,
    published: dt.datetime,
    schedule: Schedule,
    index: int,
    now: dt.datetime,
) -> None:
    at = schedule.at(index)
    enqueue(
        conn,
        START,
        # The publication anchors relative schedules (R5/PT1H, PT4H), so every
        # occurrence's job carries it.
        {
            "process": key,
            "version": version,
            "occurrence": index,
            "published_at": published.isoformat(),
        },
        run_at=at,
        dedupe_key=f"start:{key}:{version}:{at:%Y%m%dT%H%M%SZ}",
        now=now,
    )
