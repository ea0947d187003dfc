"""The ``escalation`` property of a user task: what happens when it is overdue, step by step.

Without the property an overdue task is escalated as it always was: the
``escalateTo`` roles become candidates at the due time. With it, the
designer lists steps, each at the due time or some working time after it::

    escalation="notify, head after PT4H, reassign after P1D"

* ``notify`` — the assignee (or, unclaimed, the candidates) is told: a
  history entry, and the task shows as escalated in the inbox. Delivery by
  mail or SMS comes with the connectors;
* ``candidates`` — the ``escalateTo`` roles become candidates (the default);
* ``head`` — the head of the assignee's department (the nearest holder of an
  ``escalateTo`` role at or above it, not the assignee), or of the
  candidates' departments when nobody has claimed it, becomes a candidate;
* ``reassign`` — the task moves to that head (or the ``escalateTo`` roles
  when no department has one); the previous assignee is in the history;
* ``return`` — the task goes back to the step before it, as a return (退回)
  would; nothing can follow it.

Offsets count working time on the business calendar, like ``dueIn``. A step
whose task is no longer open when it comes due does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.calendar import CalendarDefinitionError, parse_duration

ACTIONS = ("notify", "candidates", "head", "reassign", "return")
NEEDS_ROLES = frozenset({"candidates", "head", "reassign"})


class EscalationError(ValueError):
    """The property does not parse; the message says what to write."""


@dataclass(frozen=True)
class Step:
    action: str
    after: str | None  # working time after the due time (a business-calendar duration)


def parse_escalation(text: str) -> list[Step]:
    steps = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        words = part.split()
        action = words[0]
        if action not in ACTIONS:
            raise EscalationError(f"{action!r} is not an escalation step; use {', '.join(ACTIONS)}")
        if len(words) == 1:
            steps.append(Step(action, None))
            continue
        if len(words) != 3 or words[1] != "after":
            raise EscalationError(f"{part!r}: write a step as '{action}' or '{action} after PT4H'")
        try:
            parse_duration(words[2])
        except CalendarDefinitionError as exc:
            raise EscalationError(f"{part!r}: {exc.message}") from None
        steps.append(Step(action, words[2]))
    if not steps:
        raise EscalationError("list at least one step, e.g. 'notify, head after PT4H'")
    return steps


def escalation_steps(properties: Mapping[str, str]) -> list[Step] | None:
    """The task's steps; None without the property (the default escalation)."""
    text = properties.get("escalation")
    return None if text is None else parse_escalation(text)


def check_escalation(properties: Mapping[str, str]) -> list[str]:
    """Publish-time problems of a task's ``escalation`` property."""
    try:
        steps = parse_escalation(properties["escalation"])
    except EscalationError as exc:
        return [f"escalation: {exc}"]
    problems = []
    if "dueIn" not in properties:
        problems.append("escalation needs a dueIn: steps count from the due time")
    needing = sorted({s.action for s in steps} & NEEDS_ROLES)
    if needing and not properties.get("escalateTo", "").strip():
        problems.append(
            f"escalation {', '.join(needing)} needs escalateTo: the role(s) escalated to "
            "(the department head's role for head and reassign, e.g. branch_head)"
        )
    if any(s.action == "return" for s in steps[:-1]):
        problems.append("escalation: return ends the task, so it must be the last step")
    return problems
