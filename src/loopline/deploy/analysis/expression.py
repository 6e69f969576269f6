"""Conditions over a measurement's ``result``: ``successCondition`` and ``failureCondition``.

Argo Rollouts evaluates them in the ``expr`` language; loopline reads the same everyday forms
(``result >= 0.95``, ``result[0] < 2 && !isNaN(result[1])``) with Python's :mod:`ast` parser
and walks the tree itself. Nothing is compiled to bytecode or executed: every node is checked
against a short list when the template is built, and anything else is rejected there.

Allowed: numbers, ``true``/``false``, ``result``, ``result[i]`` (any allowed index
expression), list literals ``[a, b]``; comparisons ``== != < <= > >=`` (chained too);
``and or not`` (also spelled ``&& || !``); ``+ - * /`` and unary ``-``/``+``; calls of
``len min max abs all any isNaN isInf``. A condition must be true or false.

Evaluation errors (index out of range, a NaN compared, division by zero, no value) raise
:class:`~loopline.errors.InvalidInputError`; the analysis records an Error measurement, as
Argo does for an expression that cannot be evaluated.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidDefinitionError, InvalidInputError, shown, shown_field

MAX_LENGTH = 1000
"""Longest condition accepted, in characters."""
MAX_NODES = 300
MAX_DEPTH = 40

Result = float | list[float] | None
"""What a provider measured: one number, one number per series, or nothing."""

_FUNCTIONS = ("len", "min", "max", "abs", "all", "any", "isNaN", "isInf")
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_BOOL_NAMES = {"true": True, "false": False}
# Argo's expr spellings → Python's (strings are not allowed, so this cannot corrupt one).
_ARGO = (
    (re.compile(r"&&"), " and "),
    (re.compile(r"\|\|"), " or "),
    (re.compile(r"!(?!=)"), " not "),
)

# Static kinds, checked when the condition is built.
_BOOL, _NUM, _LIST, _ANY = "a boolean", "a number", "a list", "any"


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed, checked condition; equal when their texts are equal."""

    text: str
    tree: ast.expr = field(compare=False, repr=False, hash=False)

    @classmethod
    def parse(cls, text: object, path: str) -> Condition:
        """Check ``text``; raises InvalidDefinitionError naming ``path`` when it is not allowed."""
        if not isinstance(text, str) or not text.strip():
            raise _invalid(path, text, "must be a non-empty expression over result")
        if len(text) > MAX_LENGTH:
            raise _invalid(path, text[:40] + "…", f"is longer than {MAX_LENGTH} characters")
        source = text.strip()
        for pattern, replacement in _ARGO:
            source = pattern.sub(replacement, source)
        try:
            with warnings.catch_warnings():  # "invalid escape sequence" and the like
                warnings.simplefilter("ignore")
                tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            msg = getattr(exc, "msg", None) or type(exc).__name__
            raise _invalid(path, text, f"does not parse ({msg})") from None
        nodes = sum(1 for _ in ast.walk(tree))
        if nodes > MAX_NODES:
            raise _invalid(path, text, f"has more than {MAX_NODES} parts; simplify it")
        kind = _check(tree.body, path, text, 1)
        if kind not in (_BOOL, _ANY):
            raise _invalid(path, text, f"is {kind}, but a condition must be true or false")
        return cls(text, tree.body)

    def evaluate(self, result: Result) -> bool:
        """True or false for this ``result``; raises InvalidInputError when it cannot say."""
        try:
            value = _eval(self.tree, result)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (result = {_show(result)})") from None
        if not isinstance(value, bool):
            raise InvalidInputError(
                f"The condition gave {_show(value)}, not true or false (result = {_show(result)})."
            )
        return value


def _invalid(path: str, value: object, rule: str) -> InvalidDefinitionError:
    return InvalidDefinitionError(
        f"AnalysisTemplate field {shown_field(path)} = {shown(value)} is invalid: it {rule}.",
        field=shown_field(path),
    )


def _check(node: ast.AST, path: str, text: str, depth: int) -> str:
    """The static kind of ``node``; rejects every node type that is not allowed."""
    if depth > MAX_DEPTH:
        raise _invalid(path, text, f"nests deeper than {MAX_DEPTH} levels")

    def sub(n: ast.AST) -> str:
        return _check(n, path, text, depth + 1)

    def want(n: ast.AST, *kinds: str) -> str:
        kind = sub(n)
        if kind != _ANY and kind not in kinds:
            raise _invalid(path, text, f"uses {kind} where {' or '.join(kinds)} is needed")
        return kind

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return _BOOL
        if isinstance(node.value, int | float):
            return _NUM
        literal = shown(node.value)
        raise _invalid(path, text, f"contains the literal {literal}; only numbers are allowed")
    if isinstance(node, ast.Name):
        if node.id == "result":
            return _ANY
        if node.id in _BOOL_NAMES:
            return _BOOL
        raise _invalid(path, text, f"names {shown(node.id)}; the only variable is result")
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            want(v, _BOOL)
        return _BOOL
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            want(node.operand, _BOOL)
            return _BOOL
        if isinstance(node.op, ast.USub | ast.UAdd):
            want(node.operand, _NUM)
            return _NUM
        raise _invalid(path, text, "uses the operator ~; allowed are not, - and +")
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise _invalid(path, text, f"uses {type(node.op).__name__}; allowed are + - * /")
        want(node.left, _NUM)
        want(node.right, _NUM)
        return _NUM
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _invalid(
                    path, text, f"uses {type(op).__name__}; allowed are == != < <= > >="
                )
        for operand in (node.left, *node.comparators):
            sub(operand)
        return _BOOL
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Slice):
            raise _invalid(path, text, "slices a list; index one element, as in result[0]")
        want(node.value, _LIST)
        want(node.slice, _NUM)
        return _ANY
    if isinstance(node, ast.List | ast.Tuple):
        for e in node.elts:
            if isinstance(e, ast.Starred):
                raise _invalid(path, text, "unpacks with *; list the elements")
            sub(e)
        return _LIST
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS:
            raise _invalid(path, text, f"calls something other than {', '.join(_FUNCTIONS)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _invalid(path, text, f"passes keyword or * arguments to {name}")
        if not node.args or (name not in ("min", "max") and len(node.args) != 1):
            raise _invalid(path, text, f"calls {name} with {len(node.args)} arguments")
        for a in node.args:
            sub(a)
        if name in ("all", "any", "isNaN", "isInf"):
            return _BOOL
        return _NUM
    raise _invalid(path, text, f"contains a {type(node).__name__}, which conditions do not allow")


def _eval(node: ast.expr, result: Result) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id == "result":
            if result is None:
                raise InvalidInputError("The metric has no value: the provider returned nothing")
            return result
        return _BOOL_NAMES[node.id]
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        for v in node.values:
            b = _bool(_eval(v, result), "and" if is_and else "or")
            if b != is_and:
                return b
        return is_and
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, result)
        if isinstance(node.op, ast.Not):
            return not _bool(operand, "not")
        n = _num(operand, "unary minus")
        return -n if isinstance(node.op, ast.USub) else n
    if isinstance(node, ast.BinOp):
        x = _num(_eval(node.left, result), "arithmetic")
        y = _num(_eval(node.right, result), "arithmetic")
        try:
            return _ARITH[type(node.op)](x, y)
        except ZeroDivisionError:
            raise InvalidInputError("The condition divides by zero") from None
        except OverflowError:
            raise InvalidInputError("A number in the condition is too large") from None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, result)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, result)
            if not _compare(type(op), left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Subscript):
        seq = _eval(node.value, result)
        index = _eval(node.slice, result)
        if not isinstance(seq, list):
            raise InvalidInputError(f"Only a list can be indexed, not {_show(seq)}")
        if isinstance(index, float) and index.is_integer():
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInputError(f"A list index must be a whole number, not {_show(index)}")
        if not -len(seq) <= index < len(seq):
            raise InvalidInputError(f"Index {index} is out of range for a list of {len(seq)}")
        return seq[index]
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, result) for e in node.elts]
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _call(node.func.id, [_eval(a, result) for a in node.args])


def _call(name: str, args: list[object]) -> object:
    if name == "len":
        if not isinstance(args[0], list):
            raise InvalidInputError(f"len needs a list, not {_show(args[0])}")
        return len(args[0])
    if name in ("isNaN", "isInf"):
        x = _num(args[0], name)
        return math.isnan(x) if name == "isNaN" else math.isinf(x)
    if name == "abs":
        return abs(_num(args[0], "abs"))
    if name in ("all", "any"):
        items = args[0]
        if not isinstance(items, list):
            raise InvalidInputError(f"{name} needs a list, not {_show(items)}")
        truth = [_truth(v, name) for v in items]
        return all(truth) if name == "all" else any(truth)
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    numbers = [_ordered(v, name) for v in items]
    if not numbers:
        raise InvalidInputError(f"{name} of an empty list has no value")
    return min(numbers) if name == "min" else max(numbers)


def _compare(op: type[ast.cmpop], a: object, b: object) -> bool:
    if op in (ast.Eq, ast.NotEq) and isinstance(a, bool) and isinstance(b, bool):
        return _COMPARE[op](a, b)
    return _COMPARE[op](_ordered(a, "a comparison"), _ordered(b, "a comparison"))


def _num(v: object, where: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidInputError(f"{where} needs a number, not {_show(v)}")
    return v


def _ordered(v: object, where: str) -> int | float:
    n = _num(v, where)
    if isinstance(n, float) and math.isnan(n):
        raise InvalidInputError(
            f"{where} met NaN; test it first with isNaN(…), as in !isNaN(result) && result > 1"
        )
    return n


def _bool(v: object, where: str) -> bool:
    if not isinstance(v, bool):
        raise InvalidInputError(f"{where} needs true or false, not {_show(v)}")
    return v


def _truth(v: object, where: str) -> bool:
    return v if isinstance(v, bool) else _ordered(v, where) != 0


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
