"""Text to :class:`Expression`: Python's own parser, then a strict whitelist.

``ast.parse`` does the tokenising (so strings, numbers and precedence are
exactly Python's); every node kind is then either translated to our tree or
refused with a message that names its line and column. Size limits are
checked before (length) and right after (node count) parsing, and depth
while translating, so no input makes this step slow or deep.
"""

from __future__ import annotations

import ast
import decimal
import re
import warnings

from engine.expressions.errors import ExpressionParseError
from engine.expressions.functions import FUNCTIONS
from engine.expressions.limits import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    MAX_TEXT,
    Refusal,
    check_decimal,
    check_int,
)
from engine.expressions.nodes import (
    ArithmeticOp,
    BoolOp,
    BoolOpName,
    Call,
    Compare,
    CompareOp,
    DictOf,
    Expression,
    Field,
    IfElse,
    Index,
    ListOf,
    Literal,
    Name,
    Node,
    Slice,
    Span,
    Unary,
    collect_paths,
)
from engine.expressions.nodes import (
    Binary as BinaryNode,
)

_ARITHMETIC: dict[type[ast.operator], ArithmeticOp] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_UNSUPPORTED_OPERATORS: dict[type[ast.AST], str] = {
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
}
_COMPARE: dict[type[ast.cmpop], CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_REFUSED: dict[type[ast.AST], str] = {
    ast.Lambda: "defining functions (lambda) is not allowed",
    ast.ListComp: "comprehensions (`for` inside brackets) are not allowed; use any(), all(), "
    "sum() or pluck()",
    ast.SetComp: "comprehensions (`for` inside braces) are not allowed",
    ast.DictComp: "comprehensions (`for` inside braces) are not allowed",
    ast.GeneratorExp: "generator expressions (`for` inside parentheses) are not allowed",
    ast.NamedExpr: "assignments (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed; join texts with + and str()",
    ast.FormattedValue: "f-strings are not allowed; join texts with + and str()",
    ast.Starred: "unpacking with * is not allowed",
    ast.Set: "sets ({a, b}) are not allowed; use a list [a, b]",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
# Python syntax error messages name the offending token; these say what to write.
_SYNTAX_HINTS = (
    ("&&", "write `and` instead of &&"),
    ("||", "write `or` instead of ||"),
    ("===", "write == to compare"),
)
_LINES = re.compile(r"\r\n|\r|\n")


def translate(text: str) -> Expression:
    """Parse ``text`` into our tree; raise :class:`ExpressionParseError` if refused."""
    if not isinstance(text, str):
        raise ExpressionParseError("an expression must be text", text=repr(text)[:80])
    if len(text) > MAX_LENGTH:
        raise ExpressionParseError(
            f"the expression is {len(text):,} characters long; at most {MAX_LENGTH:,} are allowed",
            text=text,
        )
    if "\x00" in text:
        raise ExpressionParseError("the expression contains a NUL character", text=text)
    source = text.lstrip()
    if not source.strip():
        raise ExpressionParseError("the expression is empty", text=text)
    translator = _Translator(text, source)
    try:
        with warnings.catch_warnings():
            # Python warns about `x is 1`; we refuse it with our own message.
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise translator.syntax_error(error) from None
    except (RecursionError, MemoryError):
        raise ExpressionParseError("the expression is nested too deeply", text=text) from None
    for count, part in enumerate(ast.walk(tree), start=1):
        if count > MAX_NODES:
            raise ExpressionParseError(
                f"the expression is too complex (more than {MAX_NODES} parts)", text=text
            )
        # Refused before anything else: the first thing to say about `().__class__`.
        translator.check_private(part)
    root = translator.node(tree.body, 0)
    return Expression(
        text=text,
        root=root,
        names=frozenset(translator.names),
        paths=collect_paths(root),
        functions=frozenset(translator.functions),
    )


class _Translator:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        prefix = text[: len(text) - len(source)]
        prefix_lines = _LINES.split(prefix)
        self.line_shift = len(prefix_lines) - 1
        self.column_shift = len(prefix_lines[-1])
        self.lines = _LINES.split(source)
        self.source = source
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def _span(self, line: int, column: int) -> Span:
        """``column`` is 1-based in characters of the stripped source."""
        if line == 1:
            column += self.column_shift
        return Span(line + self.line_shift, column)

    def span(self, node: ast.AST) -> Span:
        line: int = getattr(node, "lineno", 1)
        offset: int = getattr(node, "col_offset", 0)
        # ast columns are UTF-8 byte offsets; a designer counts characters.
        text_line = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        column = len(text_line.encode()[:offset].decode("utf-8", "replace")) + 1
        return self._span(line, column)

    def refuse(self, node: ast.AST, problem: str) -> ExpressionParseError:
        at = self.span(node)
        return ExpressionParseError(problem, text=self.text, line=at.line, column=at.column)

    def syntax_error(self, error: SyntaxError) -> ExpressionParseError:
        hint = next((h for token, h in _SYNTAX_HINTS if token in self.source), None)
        problem = f"syntax error: {error.msg}" + (f" ({hint})" if hint else "")
        at = self._span(error.lineno or 1, error.offset or 1)
        return ExpressionParseError(problem, text=self.text, line=at.line, column=at.column)

    def check_private(self, node: ast.AST) -> None:
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        if name is not None and name.startswith("_"):
            raise self.refuse(node, f"the name {name!r} starts with '_', which is not allowed")

    def node(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.refuse(
                node, f"the expression is nested too deeply (over {MAX_DEPTH} levels)"
            )
        try:
            translated = self._translate(node, depth + 1)
        except Refusal as refusal:
            raise self.refuse(node, refusal.message) from None
        return translated

    def _all(self, nodes: list[ast.expr], depth: int) -> tuple[Node, ...]:
        return tuple(self.node(item, depth) for item in nodes)

    def _translate(self, node: ast.AST, depth: int) -> Node:
        at = self.span(node)
        match node:
            case ast.Constant():
                return Literal(self._constant(node), at=at)
            case ast.Name(id=name):
                self._check_name(name, "name")
                self.names.add(name)
                return Name(name, at=at)
            case ast.Attribute(value=target, attr=key):
                self._check_name(key, "field name")
                if not isinstance(target, ast.Name | ast.Attribute | ast.Subscript | ast.Call):
                    raise Refusal(self._method_hint(key, "a value like this"))
                return Field(self.node(target, depth), key, at=at)
            case ast.Subscript(value=target, slice=ast.Slice(lower=lower, upper=upper, step=step)):
                if step is not None:
                    raise Refusal("slices with a step ([a:b:c]) are not allowed")
                start = None if lower is None else self.node(lower, depth)
                stop = None if upper is None else self.node(upper, depth)
                return Slice(self.node(target, depth), start, stop, at=at)
            case ast.Subscript(value=target, slice=index):
                return Index(self.node(target, depth), self.node(index, depth), at=at)
            case ast.List(elts=items):
                return ListOf(self._all(items, depth), at=at)
            case ast.Tuple(elts=items):
                return ListOf(self._all(items, depth), is_tuple=True, at=at)
            case ast.Dict(keys=keys, values=values):
                if any(key is None for key in keys):
                    raise Refusal("unpacking with ** is not allowed")
                plain_keys = [key for key in keys if key is not None]
                return DictOf(self._all(plain_keys, depth), self._all(values, depth), at=at)
            case ast.UnaryOp(op=op, operand=operand):
                return self._unary(op, self.node(operand, depth), at)
            case ast.BinOp(op=op, left=left, right=right):
                symbol = _ARITHMETIC.get(type(op))
                if symbol is None:
                    raise Refusal(self._operator_refusal(op))
                return BinaryNode(symbol, self.node(left, depth), self.node(right, depth), at=at)
            case ast.BoolOp(op=op, values=operands):
                joined: BoolOpName = "and" if isinstance(op, ast.And) else "or"
                return BoolOp(joined, self._all(operands, depth), at=at)
            case ast.Compare(left=left, ops=ops, comparators=rights):
                return self._compare(left, ops, rights, depth, at)
            case ast.Call():
                return self._call(node, depth, at)
            case ast.IfExp(test=test, body=then, orelse=otherwise):
                return IfElse(
                    self.node(test, depth),
                    self.node(then, depth),
                    self.node(otherwise, depth),
                    at=at,
                )
        problem = _REFUSED.get(type(node), f"{type(node).__name__} is not allowed in an expression")
        raise Refusal(problem)

    def _constant(self, node: ast.Constant) -> bool | int | decimal.Decimal | str | None:
        value = node.value
        if value is None or isinstance(value, bool | str):
            if isinstance(value, str) and len(value) > MAX_TEXT:
                raise Refusal("the text is too long")
            return value
        if isinstance(value, int):
            return check_int(value)
        if isinstance(value, float):
            # The literal as written, not the float Python read it as.
            written = ast.get_source_segment(self.source, node) or repr(value)
            number = check_decimal(decimal.Decimal(written))
            exponent = number.as_tuple().exponent
            return (
                number.quantize(decimal.Decimal(1))
                if isinstance(exponent, int) and exponent > 0
                else number
            )
        if isinstance(value, bytes):
            raise Refusal("byte strings (b'...') are not allowed; use a text '...'")
        if isinstance(value, complex):
            raise Refusal("complex numbers are not allowed")
        raise Refusal("`...` is not allowed")

    def _check_name(self, name: str, what: str) -> None:
        if name.startswith("_"):
            raise Refusal(f"the {what} {name!r} starts with '_', which is not allowed")

    def _method_hint(self, key: str, target: str) -> str:
        if key in FUNCTIONS:
            return f"{target} has no .{key}: values have no methods; write {key}(value) instead"
        return (
            f"{target} has no .{key}: a dot only reads a field of a record (such as customer.tier)"
        )

    def _operator_refusal(self, op: ast.AST) -> str:
        symbol = _UNSUPPORTED_OPERATORS.get(type(op), type(op).__name__)
        return f"the operator {symbol} is not supported"

    def _unary(self, op: ast.unaryop, operand: Node, at: Span) -> Node:
        if isinstance(op, ast.USub):
            return Unary("-", operand, at=at)
        if isinstance(op, ast.UAdd):
            return Unary("+", operand, at=at)
        if isinstance(op, ast.Not):
            return Unary("not", operand, at=at)
        raise Refusal(self._operator_refusal(op))

    def _compare(
        self,
        left: ast.expr,
        ops: list[ast.cmpop],
        rights: list[ast.expr],
        depth: int,
        at: Span,
    ) -> Node:
        symbols: list[CompareOp] = [_COMPARE[type(op)] for op in ops]
        operands = [left, *rights]
        for index, symbol in enumerate(symbols):
            if symbol in ("is", "is not"):
                pair = operands[index : index + 2]
                if not any(isinstance(o, ast.Constant) and o.value is None for o in pair):
                    raise Refusal(
                        f"`{symbol}` can only test for None (x {symbol} None); use == or != "
                        "to compare values"
                    )
        return Compare(self.node(left, depth), tuple(symbols), self._all(rights, depth), at=at)

    def _call(self, node: ast.Call, depth: int, at: Span) -> Node:
        function = node.func
        if isinstance(function, ast.Attribute):
            if function.attr in FUNCTIONS:
                raise Refusal(self._method_hint(function.attr, "a value"))
            raise Refusal(
                f"values have no methods (.{function.attr}() cannot be called); "
                "only the listed functions can, such as upper(text)"
            )
        if not isinstance(function, ast.Name):
            raise Refusal("only a function named directly can be called, such as len(x)")
        name = function.id
        self._check_name(name, "function name")
        if node.keywords:
            raise Refusal(f"{name}(): named arguments (name=value) are not allowed")
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise Refusal(
                f"{name}() is not an available function; see the list of functions "
                "in the expression reference"
            )
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise Refusal(f"{spec.signature}: wrong number of arguments ({count} given)")
        self.functions.add(name)
        return Call(name, self._all(node.args, depth), at=at)
