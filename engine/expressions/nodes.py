"""The typed tree of a parsed expression.

Our own small frozen dataclasses rather than Python's ``ast``: the evaluator
and the SQL compiler walk a closed set of node kinds whose meaning is ours,
and a tree from ``parse`` has already passed every syntax rule and limit.
Positions (``at``) do not take part in equality, so two parses of the same
expression with different spacing compare equal.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral
from typing import TypeAlias


@dataclass(frozen=True)
class Span:
    """1-based line and column, counted in characters."""

    line: int
    column: int


NOWHERE = Span(0, 0)

LiteralValue: TypeAlias = bool | int | decimal.Decimal | str | None
ArithmeticOp: TypeAlias = TypingLiteral["+", "-", "*", "/", "//", "%", "**"]
UnaryOp: TypeAlias = TypingLiteral["-", "+", "not"]
BoolOpName: TypeAlias = TypingLiteral["and", "or"]
CompareOp: TypeAlias = TypingLiteral[
    "==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"
]


@dataclass(frozen=True)
class Node:
    at: Span = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Literal(Node):
    value: LiteralValue


@dataclass(frozen=True)
class Name(Node):
    """A variable from the evaluation context."""

    name: str


@dataclass(frozen=True)
class Field(Node):
    """``target.key``: a lookup of ``key`` in a mapping, never a Python attribute."""

    target: Node
    key: str


@dataclass(frozen=True)
class Index(Node):
    """``target[index]``: a list position or a mapping key."""

    target: Node
    index: Node


@dataclass(frozen=True)
class Slice(Node):
    """``target[start:stop]`` on text or a list (no step)."""

    target: Node
    start: Node | None
    stop: Node | None


@dataclass(frozen=True)
class ListOf(Node):
    """A list or tuple literal; both evaluate to a Python list or tuple."""

    items: tuple[Node, ...]
    is_tuple: bool = False


@dataclass(frozen=True)
class DictOf(Node):
    keys: tuple[Node, ...]
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: UnaryOp
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: ArithmeticOp
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: BoolOpName
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Compare(Node):
    """``left op1 right1 op2 right2 ...``, chained as in Python."""

    left: Node
    ops: tuple[CompareOp, ...]
    rights: tuple[Node, ...]


@dataclass(frozen=True)
class Call(Node):
    """A call of a whitelisted function (checked, with its arity, by ``parse``)."""

    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class IfElse(Node):
    """``then if test else otherwise``."""

    test: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression.

    ``names`` are its free variables; ``paths`` every dotted path rooted at a
    name (``customer.tier`` gives ``("customer", "tier")``, a bare name a
    one-element path), so a publisher can check that fields exist;
    ``functions`` the functions it calls.
    """

    text: str
    root: Node
    names: frozenset[str]
    paths: frozenset[tuple[str, ...]]
    functions: frozenset[str]


def dotted_path(node: Node) -> tuple[str, ...] | None:
    """``a.b.c`` as ``("a", "b", "c")``; None if the node is not such a path."""
    keys: list[str] = []
    while isinstance(node, Field):
        keys.append(node.key)
        node = node.target
    if not isinstance(node, Name):
        return None
    return (node.name, *reversed(keys))


def children(node: Node) -> list[Node]:
    """The direct sub-nodes of ``node``, left to right."""
    found: list[Node] = []
    for name in node.__dataclass_fields__:
        value = getattr(node, name)
        if isinstance(value, Node):
            found.append(value)
        elif isinstance(value, tuple):
            found.extend(item for item in value if isinstance(item, Node))
    return found


def collect_paths(root: Node) -> frozenset[tuple[str, ...]]:
    """The longest dotted paths in the tree (``a.b.c`` gives only ``a.b.c``)."""
    paths: set[tuple[str, ...]] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        path = dotted_path(node)
        if path is not None:
            paths.add(path)
        else:
            pending.extend(children(node))
    return frozenset(paths)


def is_closed(node: Node, *, excluded_calls: frozenset[str] = frozenset()) -> bool:
    """No variable below ``node`` (and no call of an ``excluded_calls`` function)."""
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Name):
            return False
        if isinstance(current, Call) and current.function in excluded_calls:
            return False
        pending.extend(children(current))
    return True
