"""Apps as plain files: a folder of form definitions, reviewable in git.

An app folder holds one form per file in ``forms/<key>.json``. This module
reads such a folder (reporting every file's problems at once), orders the
forms so that link targets are published before the forms that link to
them, publishes them in the caller's transaction, and writes the published
definitions back in one canonical text form, so that
``import -> export`` reproduces a canonical folder byte for byte.

Problems are reported as :class:`~engine.errors.ErrorDetail` whose pointer is
a JSON reference relative to the app folder: ``forms/customer.json`` for a
whole file, ``forms/customer.json#/schema/properties/phone`` for a place in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.catalog import get_published, published_keys
from engine.errors import DefinitionError, ErrorDetail, PlanRefusedError
from engine.forms.definition import FormDefinition, parse_definition
from engine.publish.service import PublishResult, publish

FORMS_DIR = "forms"
SUFFIX = ".json"


# --- canonical text ---------------------------------------------------------


def canonical_json(document: Any) -> str:
    """The canonical text of a definition document.

    UTF-8 friendly (``ensure_ascii=False``), two-space indent, a trailing
    newline, and object keys sorted, with one exception: the members of a
    schema's ``properties`` keep their order, because that order *is* the
    form's field order (and the column order of its table). Arrays always
    keep their order. The result is stable: canonicalising it again changes
    nothing.
    """
    return json.dumps(_document(document), ensure_ascii=False, indent=2) + "\n"


def _document(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return _sorted(value)
    return {
        k: _object_schema(value[k]) if k == "schema" else _sorted(value[k]) for k in sorted(value)
    }


def _object_schema(value: Any) -> Any:
    """An object schema (the form's, or a sub-table's ``items``)."""
    if not isinstance(value, Mapping):
        return _sorted(value)
    return {
        k: _properties(value[k]) if k == "properties" else _sorted(value[k]) for k in sorted(value)
    }


def _properties(value: Any) -> Any:
    """Field key -> field definition: the order of the fields is kept."""
    if not isinstance(value, Mapping):
        return _sorted(value)
    return {k: _field(v) for k, v in value.items()}


def _field(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return _sorted(value)
    return {
        k: _object_schema(value[k]) if k == "items" else _sorted(value[k]) for k in sorted(value)
    }


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


# --- reading ----------------------------------------------------------------


def _forms_dir(app_dir: Path) -> Path:
    return Path(app_dir) / FORMS_DIR


def _reference(path: Path, app_dir: Path, pointer: str = "") -> str:
    try:
        rel = path.relative_to(app_dir).as_posix()
    except ValueError:  # pragma: no cover - callers pass files inside app_dir
        rel = path.as_posix()
    return f"{rel}#{pointer}" if pointer else rel


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def read_document(path: Path, *, name: str | None = None) -> tuple[Any, list[ErrorDetail]]:
    """Read one JSON file: ``(document, [])`` or ``(None, problems)``.

    A syntax error names its line and column; a key that appears twice in
    one object (which JSON parsers would silently resolve) is an error too.
    ``name`` is how the file is called in problems (default: its path).
    """
    where = name if name is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [ErrorDetail(where, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [ErrorDetail(where, f"not UTF-8 text (byte {exc.start}): save it as UTF-8")]
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates), []
    except json.JSONDecodeError as exc:
        return None, [
            ErrorDetail(where, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        ]
    except _DuplicateKey as exc:
        return None, [ErrorDetail(where, f"invalid JSON: key {exc.args[0]!r} appears twice")]


def read_definition(path: Path) -> FormDefinition:
    """Read and parse a single definition file (for ``form plan/publish FILE``).

    Raises :class:`DefinitionError` naming the file, and the line and column
    of a JSON syntax error.
    """
    path = Path(path)
    document, problems = read_document(path)
    if problems:
        raise DefinitionError(f"{path} is not a valid JSON document.", problems)
    return parse_definition(document, source=str(path))


def load_app(app_dir: Path) -> list[FormDefinition]:
    """Read every ``forms/*.json`` of an app folder, sorted by key.

    Each file holds one form whose ``key`` equals the file name without
    ``.json``. Raises one :class:`DefinitionError` listing the problems of
    every file, so an author can fix the whole folder in one round.
    """
    app_dir = Path(app_dir)
    forms_dir = _forms_dir(app_dir)
    if not forms_dir.is_dir():
        raise DefinitionError(
            f"{app_dir} is not an app folder: it has no {FORMS_DIR}/ folder.",
            [ErrorDetail(FORMS_DIR, "missing: an app keeps one form per file in forms/<key>.json")],
        )
    files = sorted(p for p in forms_dir.iterdir() if p.suffix == SUFFIX and p.is_file())
    if not files:
        raise DefinitionError(
            f"The app in {app_dir} has no forms.",
            [ErrorDetail(FORMS_DIR, "no *.json files: add one form per file as forms/<key>.json")],
        )
    problems: list[ErrorDetail] = []
    definitions: list[FormDefinition] = []
    for path in files:
        name = _reference(path, app_dir)
        document, read_problems = read_document(path, name=name)
        if read_problems:
            problems.extend(read_problems)
            continue
        try:
            definition = parse_definition(document, source=name)
        except DefinitionError as exc:
            problems.extend(
                ErrorDetail(_reference(path, app_dir, e.pointer), e.message) for e in exc.errors
            )
            if not exc.errors:
                problems.append(ErrorDetail(name, exc.message))
            continue
        if definition.key != path.stem:
            problems.append(
                ErrorDetail(
                    _reference(path, app_dir, "/key"),
                    f"key {definition.key!r} does not match the file name; "
                    f"rename the file to {definition.key}{SUFFIX} or change the key",
                )
            )
            continue
        definitions.append(definition)
    if problems:
        count = len({p.pointer.split("#", 1)[0] for p in problems})
        raise DefinitionError(
            f"The app in {app_dir} has {len(problems)} problem(s) in {count} file(s); "
            "nothing was changed.",
            problems,
        )
    return sorted(definitions, key=lambda d: d.key)


# --- ordering ---------------------------------------------------------------


def _link_pointers(definition: FormDefinition, target: str) -> list[str]:
    """Pointers of the fields of ``definition`` that link to ``target``."""
    found = []
    for f in definition.fields:
        if f.link_target == target:
            found.append(f"/schema/properties/{f.key}/x-link")
        for c in f.children:
            if c.link_target == target:
                found.append(f"/schema/properties/{f.key}/items/properties/{c.key}/x-link")
    return found


def publish_order(definitions: Iterable[FormDefinition]) -> list[FormDefinition]:
    """Order ``definitions`` so that every link target comes before its users.

    Links to the form itself are fine, and so are links to forms outside the
    set (they must already be published; publishing checks that). Ties are
    broken by key, so the order is deterministic. A cycle between forms
    cannot be published in one go and raises :class:`DefinitionError`
    naming each cycle and the link fields that make it.
    """
    by_key: dict[str, FormDefinition] = {}
    for d in definitions:
        if d.key in by_key:
            raise DefinitionError(
                f"Form {d.key!r} is defined twice.",
                [ErrorDetail(f"{FORMS_DIR}/{d.key}{SUFFIX}#/key", "defined twice")],
            )
        by_key[d.key] = d
    deps = {k: sorted(t for t in d.link_targets() if t in by_key) for k, d in by_key.items()}

    ordered: list[FormDefinition] = []
    done: set[str] = set()
    pending = sorted(by_key)
    while pending:
        ready = [k for k in pending if all(t in done for t in deps[k])]
        if not ready:
            break
        for k in ready:
            ordered.append(by_key[k])
            done.add(k)
        pending = [k for k in pending if k not in done]
    if not pending:
        return ordered

    problems: list[ErrorDetail] = []
    names: list[str] = []
    for cycle in _cycles({k: [t for t in deps[k] if t in pending] for k in pending}):
        names.append(" -> ".join([*cycle, cycle[0]]))
        for source, target in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
            for pointer in _link_pointers(by_key[source], target):
                problems.append(
                    ErrorDetail(
                        f"{FORMS_DIR}/{source}{SUFFIX}#{pointer}",
                        f"{source} links to {target}, which links back (cycle "
                        f"{' -> '.join([*cycle, cycle[0]])})",
                    )
                )
    raise DefinitionError(
        "Forms that link to each other in a cycle cannot be published together: "
        + "; ".join(names)
        + ". Publish one of them first without the link, then add it in a new version.",
        problems,
    )


def _cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One concrete cycle per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan; app graphs are small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    return [_cycle_through(component[0], graph, set(component)) for component in components]


def _cycle_through(start: str, graph: Mapping[str, Sequence[str]], members: set[str]) -> list[str]:
    """A shortest cycle from ``start`` back to it, inside one component."""
    parent: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in graph[v]:
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"{start} is not on a cycle")  # pragma: no cover


# --- import and export --------------------------------------------------------


def import_app(
    conn: sa.Connection, app_dir: Path, *, actor_id: int | None = None
) -> list[PublishResult]:
    """Publish every form of an app folder, in dependency order.

    Runs in the caller's transaction, which makes the import all-or-nothing:
    if any form is refused, :class:`PlanRefusedError` lists the refusals of
    every form (pointers relative to the app folder) and the caller must roll
    back. Forms identical to their published version are left as they are
    (``changed=False``), so importing the same folder twice publishes nothing.
    """
    ordered = publish_order(load_app(app_dir))
    results: list[PublishResult] = []
    problems: list[ErrorDetail] = []
    refused: set[str] = set()
    for definition in ordered:
        blocked_by = sorted(definition.link_targets() & refused)
        if blocked_by:
            refused.add(definition.key)
            problems.append(
                ErrorDetail(
                    f"{FORMS_DIR}/{definition.key}{SUFFIX}",
                    f"not attempted: it links to {', '.join(blocked_by)}, which was refused",
                )
            )
            continue
        try:
            results.append(publish(conn, definition, actor_id=actor_id))
        except PlanRefusedError as exc:
            refused.add(definition.key)
            problems.extend(
                ErrorDetail(f"{FORMS_DIR}/{definition.key}{SUFFIX}#{e.pointer}", e.message)
                for e in exc.errors
            )
    if problems:
        keys = sorted(refused)
        raise PlanRefusedError(
            f"Importing the app was refused for {len(keys)} form(s) ({', '.join(keys)}); "
            "nothing was changed.",
            problems,
        )
    return results


@dataclass(frozen=True)
class ExportedFile:
    key: str
    version: int
    path: Path
    changed: bool


@dataclass(frozen=True)
class ExportResult:
    files: list[ExportedFile]
    # ``forms/*.json`` files already in the folder whose form is not published
    # in this database: left in place, for the caller to report.
    unknown: list[Path]


def export_app(conn: sa.Connection, app_dir: Path) -> ExportResult:
    """Write every published form's current definition as ``forms/<key>.json``.

    Files are written in :func:`canonical_json` form, only when their text
    changes, and atomically (a temporary file renamed into place). Other
    files in the folder are never deleted.
    """
    forms_dir = _forms_dir(Path(app_dir))
    forms_dir.mkdir(parents=True, exist_ok=True)
    keys = sorted(published_keys(conn))
    files: list[ExportedFile] = []
    for key in keys:
        published = get_published(conn, key)
        assert published is not None
        path = forms_dir / f"{key}{SUFFIX}"
        text = canonical_json(published.definition.document)
        changed = _write_if_changed(path, text)
        files.append(ExportedFile(key, published.version, path, changed))
    unknown = sorted(
        p for p in forms_dir.iterdir() if p.suffix == SUFFIX and p.is_file() and p.stem not in keys
    )
    return ExportResult(files, unknown)


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True
