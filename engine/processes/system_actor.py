"""The actor of what the jobs worker does by itself: start a process on a timer, escalate.

Process commands take an :class:`~engine.processes.instances.Actor`, and
record ``actor.user_id`` as the initiator, the instance's ``started_by`` and
the history's ``actor_id``. For the system all three are NULL — the
history's way of saying "the system did it" (``_history`` with no actor) —
so the system actor is an Actor without a user. It is a superuser so that
an automatic return passes the "only the assignee may" checks; only job
handlers use it, never a request.
"""

from __future__ import annotations

from engine.processes.instances import Actor

SYSTEM = Actor(user_id=None, superuser=True)
