"""What the web layer shares between requests: no globals, one object on app.state."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from engine.catalog import Schema, fingerprint, load_schema
from engine.processes.definitions import SpecCache
from permissions.compile import AccessCompiler
from permissions.gate import CallerCache
from runtime.settings import Settings
from runtime.web.openapi_access import TailoredDocuments


class SchemaCache:
    """The published forms, rebuilt only when a form is published.

    The catalogue fingerprint is checked at most every ``ttl`` seconds, so a
    form published by another server process appears within that bound; a
    publish in this process calls :meth:`invalidate` and appears at once.
    """

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._schema: Schema | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self, conn: sa.Connection) -> Schema:
        now = self._clock()
        schema = self._schema
        if schema is not None and now - self._checked < self.ttl:
            return schema
        current = fingerprint(conn)
        if schema is None or current != schema.fingerprint:
            with self._lock:
                schema = self._schema
                if schema is None or current != schema.fingerprint:
                    schema = load_schema(conn)
                    self._schema = schema
        self._checked = now
        return schema

    def invalidate(self) -> None:
        self._checked = float("-inf")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class AppContext:
    settings: Settings
    engine: sa.Engine
    schemas: SchemaCache = field(default_factory=SchemaCache)
    clock: Callable[[], dt.datetime] = utcnow
    session_ttl: dt.timedelta = dt.timedelta(hours=12)
    # One compiler per process: compiled access is cached per policy version.
    access: AccessCompiler = field(default_factory=AccessCompiler)
    # The callers' departments, per policy version (org changes bump it).
    callers: CallerCache = field(default_factory=CallerCache)
    # Parsed BPMN specs per process version (versions never change).
    process_specs: SpecCache = field(default_factory=SpecCache)
    # OpenAPI documents tailored to callers' access, shared by equal grants.
    documents: TailoredDocuments = field(default_factory=TailoredDocuments)
