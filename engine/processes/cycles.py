"""Repeating and one-off timer schedules on Formflow's clock: ISO 8601 values, checks, specs.

A timer's value becomes a :class:`Schedule`: the first occurrence, the
period between occurrences and how many there are (``None``: no end).

* ``timeDate`` ``2026-12-01T09:00:00+08:00``: once, then;
* ``timeDuration`` ``P1D``: once, that long after the timer starts waiting
  (for a start event: after the version is published);
* ``timeCycle`` ``R/2026-12-01T09:00:00+08:00/P1D`` (from that instant, for
  ever), ``R5/PT1H`` (five times, the first an hour after the timer starts
  waiting), ``R3/2026-12-01T09:00:00+08:00/P1M``.

Periods count wall time, as every BPMN timer does (SLA due times count
working time, see :mod:`engine.calendar`); months and years are calendar
months (31 January plus ``P1M`` is 28 or 29 February), so a monthly cycle
does not drift. An instant must carry its offset: a bare ``09:00`` would
mean the server's zone, which is nobody's intent.

SpiffWorkflow 3.2.0 decides when a cycle fires by comparing its own state
with the wall clock, and fires a timer start event only by waiting at the
start of a new instance. Formflow owns both schedules instead (jobs, see
:mod:`engine.processes.timers` and :mod:`engine.processes.timer_start`), so
:func:`adapt_timer_specs` changes the parsed spec: a timer start event starts
at once (the job that starts the instance *is* the timer), and a repeating
boundary timer fires an occurrence only when Formflow's job marks it due.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent

from engine.errors import ErrorDetail
from engine.processes.scripting import is_iso_literal

DURATION = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)
REPEAT = re.compile(r"^R(\d*)$")
# Internal data of a repeating boundary timer: fire one occurrence now; when
# it began to wait (on Formflow's clock: its occurrences count from then).
DUE, SINCE = "formflow_due", "formflow_since"


class TimerValueError(ValueError):
    """A timer value Formflow cannot schedule; the message says what to write."""


@dataclass(frozen=True)
class Period:
    """An ISO 8601 duration: calendar months, then exact time."""

    months: int
    time: dt.timedelta

    def times(self, at: dt.datetime, n: int) -> dt.datetime:
        """``at`` plus ``n`` periods (months first, clamped to the month's end)."""
        total = at.month - 1 + self.months * n
        year, month = at.year + total // 12, total % 12 + 1
        day = min(at.day, calendar.monthrange(year, month)[1])
        return at.replace(year=year, month=month, day=day) + self.time * n


@dataclass(frozen=True)
class Schedule:
    """Occurrence ``i`` (from 0) is ``first`` plus ``i`` periods; ``count`` None: no end."""

    first: dt.datetime
    period: Period | None
    count: int | None

    def at(self, index: int) -> dt.datetime:
        if self.period is None:
            return self.first
        return self.period.times(self.first, index).astimezone(dt.UTC)

    def exists(self, index: int) -> bool:
        return index >= 0 and (self.count is None or index < self.count)

    def following(self, index: int, now: dt.datetime) -> int | None:
        """The first occurrence after ``index`` still to come at ``now``; None when none is.

        The ones in between were missed (the server was down): one catch-up
        run stands for all of them, and they count against the repetitions.
        """
        nxt = index + 1
        if self.period is not None and self.exists(nxt) and self.at(nxt) <= now:
            nxt = self._first_after(now, nxt)
        return nxt if self.exists(nxt) else None

    def after(self, index: int, now: dt.datetime) -> tuple[int | None, int]:
        """The occurrence to schedule once ``index`` ran at ``now``, and how many it stood for.

        Occurrences between the two were missed (no worker ran): the one run
        stands for them all, so a long outage starts one instance, not a burst.
        """
        following = self.following(index, now)
        end = following if following is not None else (self.count or index + 1)
        return following, end - index - 1

    def upcoming(self, now: dt.datetime) -> int | None:
        """The first occurrence at or after ``now`` (publishing does not start missed ones)."""
        if self.at(0) >= now:
            return 0
        found = self.following(0, now - dt.timedelta(microseconds=1))
        return found

    def _first_after(self, now: dt.datetime, low: int) -> int:
        # Exponential then binary search: a cycle of minutes over a long
        # outage would take a long walk one occurrence at a time.
        high = low + 1
        while self.exists(high) and self.at(high) <= now:
            low, high = high, high * 2
        while low + 1 < high:
            middle = (low + high) // 2
            if self.exists(middle) and self.at(middle) <= now:
                low = middle
            else:
                high = middle
        return high


def parse_period(text: str) -> Period:
    match = DURATION.match(text.strip().upper())
    if match is None:
        raise TimerValueError(f"{text!r} is not an ISO 8601 duration such as PT4H, P1D or P1M")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    time = dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    period = Period(years * 12 + months, time)
    if period.months == 0 and time <= dt.timedelta(0):
        raise TimerValueError(f"the duration {text!r} is empty")
    return period


def parse_instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimerValueError(
            f"{text!r} is not an ISO 8601 instant such as 2026-12-01T09:00:00+08:00"
        ) from None
    if value.tzinfo is None or "T" not in text.upper():
        raise TimerValueError(
            f"{text!r} needs a time and an offset, e.g. 2026-12-01T09:00:00+08:00"
        )
    return value


def parse_cycle(text: str, waiting_since: dt.datetime) -> Schedule:
    """``R[n]/start/period`` or ``R[n]/period`` (the first one period after ``waiting_since``)."""
    parts = text.strip().split("/")
    repeat = REPEAT.match(parts[0].upper())
    if repeat is None or len(parts) not in (2, 3):
        raise TimerValueError(
            f"{text!r} is not a repeating interval: write R/2026-12-01T09:00:00+08:00/P1D "
            "or R5/PT1H (cron expressions are not supported)"
        )
    count = int(repeat.group(1)) if repeat.group(1) else None
    if count == 0:
        raise TimerValueError(f"{text!r} repeats zero times")
    if len(parts) == 2:
        period = parse_period(parts[1])
        return Schedule(period.times(waiting_since, 1).astimezone(dt.UTC), period, count)
    if parts[1].upper().startswith("P"):
        raise TimerValueError(
            f"{text!r}: a cycle ending at an instant is not supported; "
            "give its start (R3/2026-12-01T09:00:00+08:00/PT4H) or only its period (R3/PT4H)"
        )
    # Months are added in the offset the designer wrote, so 09:00 stays 09:00.
    return Schedule(parse_instant(parts[1]), parse_period(parts[2]), count)


def schedule_of(kind: str, text: str, waiting_since: dt.datetime) -> Schedule:
    """The schedule of a literal timer value of ``kind`` (timeDate, timeDuration, timeCycle)."""
    if kind == "timeCycle":
        return parse_cycle(text, waiting_since)
    if kind == "timeDuration":
        period = parse_period(text)
        return Schedule(period.times(waiting_since, 1).astimezone(dt.UTC), None, 1)
    return Schedule(parse_instant(text).astimezone(dt.UTC), None, 1)


# -- publish checks ----------------------------------------------------------------------


def timer_kind(definition: Any) -> tuple[str, str] | None:
    """(kind, text) of a ``bpmn:timerEventDefinition`` node; None if it has no value."""
    for child in definition:
        kind = _local(child.tag)
        if kind in ("timeDate", "timeDuration", "timeCycle"):
            return kind, (child.text or "").strip()
    return None


def check_timer(definition: Any) -> list[ErrorDetail]:
    """What Formflow cannot run about the ``bpmn:timerEventDefinition`` node, named by element."""
    event = definition.getparent()
    where, tag = f"#{event.get('id', '')}", _local(event.tag)
    found = timer_kind(definition)
    if found is None:
        return [ErrorDetail(where, "a timer needs a timeDate, timeDuration or timeCycle")]
    kind, text = found
    if tag == "startEvent":
        return _check_start(event, where, kind, text)
    if kind != "timeCycle":
        return []
    interrupting = event.get("cancelActivity", "true") != "false"
    if tag != "boundaryEvent" or interrupting:
        what = "an interrupting boundary timer" if tag == "boundaryEvent" else "this event"
        return [
            ErrorDetail(
                where,
                f"repeating timers (timeCycle) run on timer start events and non-interrupting "
                f"boundary events; {what} fires once: use timeDuration or timeDate",
            )
        ]
    return _check_literal(where, kind, text)


def _check_start(event: Any, where: str, kind: str, text: str) -> list[ErrorDetail]:
    process = event.getparent()
    if _local(process.tag) != "process":
        return [ErrorDetail(where, "timer start events of event subprocesses are not supported")]
    starts = [n for n in process if isinstance(n.tag, str) and _local(n.tag) == "startEvent"]
    if len(starts) != 1:
        return [
            ErrorDetail(
                where,
                "a process started by a timer has exactly one start event "
                f"(found {len(starts)}); publish a second process for the other start",
            )
        ]
    return _check_literal(where, kind, text)


def _check_literal(where: str, kind: str, text: str) -> list[ErrorDetail]:
    try:
        schedule_of(kind, text, dt.datetime.now(dt.UTC))
    except TimerValueError as exc:
        # No instance data exists when the schedule is made: no expressions.
        note = "" if is_iso_literal(text) else " (this timer is read without process data)"
        return [ErrorDetail(where, f"{kind}: {exc}{note}")]
    return []


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


# -- the parsed spec ---------------------------------------------------------------------


class FormflowCycle(CycleTimerEventDefinition):  # type: ignore[misc]
    """A repeating timer that fires an occurrence when Formflow's job says it is due.

    SpiffWorkflow's own cycle compares its next occurrence with the wall
    clock each time the instance is refreshed; here the job sets
    :data:`DUE` and the next refresh takes the boundary path once. The timer
    never completes on its own: it keeps waiting (harmlessly) when its
    occurrences run out, and is cancelled with its task.
    """

    def cycle_complete(self, my_task: Any) -> bool:
        if my_task._get_internal_data(SINCE) is None:
            clock = getattr(my_task.workflow.script_engine, "clock", None)
            now = clock() if clock is not None else dt.datetime.now(dt.UTC)
            my_task._set_internal_data(**{SINCE: now.isoformat()})
        due = bool(my_task._get_internal_data(DUE, False))
        if due:
            my_task._set_internal_data(**{DUE: False})
        return due


def adapt_timer_specs(specs: Iterable[Any]) -> None:
    """Hand timer start events and repeating timers of parsed process specs to Formflow."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            definition = getattr(task_spec, "event_definition", None)
            if not isinstance(definition, TimerEventDefinition):
                continue
            if isinstance(task_spec, StartEvent):
                task_spec.event_definition = NoneEventDefinition()
            elif isinstance(definition, CycleTimerEventDefinition):
                task_spec.event_definition = FormflowCycle(
                    definition.name, definition.expression, description=definition.description
                )
