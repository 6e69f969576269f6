from __future__ import annotations

import ast
import builtins
import contextlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.deploy.analysis import Condition
from loopline.deploy.analysis.expression import MAX_DEPTH, MAX_LENGTH, Result
from loopline.errors import InvalidDefinitionError, InvalidInputError

PATH = "spec.metrics[0].successCondition"


def holds(text: str, result: Result) -> bool:
    return Condition.parse(text, PATH).evaluate(result)


@pytest.mark.parametrize(
    ("text", "result", "expected"),
    [
        ("result >= 0.95", 0.97, True),
        ("result >= 0.95", 0.9, False),
        ("result[0] >= 0.95", [0.99, 0.1], True),
        ("result[-1] < 0.5", [0.99, 0.1], True),
        ("result[len(result) - 1] == 0.1", [0.99, 0.1], True),
        ("0.9 <= result < 1", 0.95, True),
        ("0.9 <= result < 1", 1.0, False),
        ("result > 1 and result < 3", 2, True),
        ("result > 1 && result < 3", 4, False),
        ("result < 1 or result > 3", 4, True),
        ("result < 1 || result > 3", 2, False),
        ("not result > 1", 0.5, True),
        ("!(result > 1)", 0.5, True),
        ("result != 1", 2, True),
        ("!isNaN(result) && result > 1", math.nan, False),
        ("isNaN(result)", math.nan, True),
        ("isInf(result)", math.inf, True),
        ("(result[0] + result[1]) / 2 * 100 > 50", [0.4, 0.8], True),
        ("-result < 0", 1, True),
        ("+result == 1", 1, True),
        ("abs(result - 1) < 0.01", 1.005, True),
        ("max(result) < 0.3", [0.1, 0.2], True),
        ("min(result) > 0.15", [0.1, 0.2], False),
        ("max(result[0], result[1], 0.5) == 0.5", [0.1, 0.2], True),
        ("len(result) == 0", [], True),
        ("all([result[0] > 0, result[1] > 0])", [1, 2], True),
        ("any([result[0] > 1, result[1] > 1])", [1, 1], False),
        ("all(result)", [1.0, 2.0], True),
        ("any(result)", [0.0, 0.0], False),
        ("true", 0, True),
        ("false || True", 0, True),
        ("result[1.0] == 2", [1, 2], True),
    ],
)
def test_evaluates_argo_style_conditions(text: str, result: Result, expected: bool) -> None:
    assert holds(text, result) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('touch /tmp/x')", "calls something other than"),
        ("result.__class__", "contains a Attribute"),
        ("open('/etc/passwd')", "calls something other than"),
        ("(lambda: 1)()", "calls something other than"),
        ("[x for x in result]", "contains a ListComp"),
        ("result if result else 0", "contains a IfExp"),
        ("'a' == 'a'", "contains the literal 'a'; only numbers are allowed"),
        ("result ** 2 > 1", "uses Pow; allowed are"),
        ("result % 2 == 0", "uses Mod; allowed are"),
        ("result // 2 == 0", "uses FloorDiv"),
        ("result in [1, 2]", "uses In; allowed are"),
        ("result is None", "uses Is; allowed are"),
        ("~result", "uses the operator ~"),
        ("x > 1", "names 'x'; the only variable is result"),
        ("None", "contains the literal None"),
        ("result[0:2] == 1", "slices a list"),
        ("len(result, 1) == 1", "calls len with 2 arguments"),
        ("max() > 1", "calls max with 0 arguments"),
        ("abs(x=1) > 0", "passes keyword or \\* arguments to abs"),
        ("max(*result) > 0", "passes keyword or \\* arguments to max"),
        ("[*result] == 1", "unpacks with \\*"),
        ("result + 1", "is a number, but a condition must be true or false"),
        ("len(result)", "is a number"),
        ("[result]", "is a list"),
        ("1 and result > 1", "uses a number where a boolean is needed"),
        ("(result > 1) + 1 > 0", "uses a boolean where a number is needed"),
        ("not 1", "uses a number where a boolean is needed"),
        ("[1][true] == 1", "uses a boolean where a number is needed"),
        ("(result := 1) > 0", "contains a NamedExpr"),
        ("result >", "does not parse"),
        ("result > 1; import os", "does not parse"),
        ("f'{result}' == 1", "contains a JoinedStr"),
        ("1j == 1", "contains the literal 1j"),
        ("(" * 300 + "true" + ")" * 300, "does not parse|nests deeper"),
        ("-" * 100 + "result > 0", "nests deeper than"),
        ("a" * (MAX_LENGTH + 1), "is longer than"),
        ("   ", "must be a non-empty expression"),
        ("result > 1\x00", "does not parse"),
    ],
)
def test_rejects_everything_else_when_built_naming_the_field(text: str, reason: str) -> None:
    with pytest.raises(InvalidDefinitionError, match=re.escape(f"field {PATH} = ")):
        Condition.parse(text, PATH)
    with pytest.raises(InvalidDefinitionError, match=reason):
        Condition.parse(text, PATH)


@pytest.mark.parametrize(
    ("text", "result", "reason"),
    [
        ("result[2] > 0", [1.0, 2.0], "Index 2 is out of range for a list of 2"),
        ("result > 0.9", math.nan, "met NaN; test it first with isNaN"),
        ("max(result) > 0.9", [1.0, math.nan], "met NaN"),
        ("result > 0.9", None, "The metric has no value"),
        ("result > 0.9", [0.95], "needs a number, not \\[0.95\\]"),
        ("result[0] > 0.9", 0.95, "Only a list can be indexed"),
        ("result[0.5] > 0.9", [0.95], "A list index must be a whole number"),
        ("1 / result > 0", 0.0, "divides by zero"),
        ("len(result) > 0", 1.0, "len needs a list"),
        ("min(result) > 0", [], "min of an empty list has no value"),
        ("all(result)", 1.0, "all needs a list"),
        ("result", 0.97, "gave 0.97, not true or false"),
        ("result == true", 1.0, "needs a number, not True"),
        ("1" + "0" * 400 + " * 1.5 > result", 1.0, "too large"),
    ],
)
def test_evaluation_errors_are_loopline_errors(text: str, result: Result, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        holds(text, result)


def test_conditions_compare_by_text() -> None:
    assert Condition.parse("result > 1", PATH) == Condition.parse("result > 1", "other")
    assert Condition.parse("result > 1", PATH) != Condition.parse("result > 2", PATH)


# ---- fuzzing ---------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
)
results: st.SearchStrategy[Any] = st.one_of(
    st.none(), numbers.map(float), st.lists(numbers.map(float), max_size=5)
)


def _grammar() -> st.SearchStrategy[str]:
    """Texts drawn from the allowed grammar (and some near misses), well-typed or not."""
    leaves = st.one_of(
        st.sampled_from(["result", "result[0]", "result[-1]", "true", "false", "[]"]),
        numbers.map(lambda n: repr(n) if not isinstance(n, float) or math.isfinite(n) else "1e309"),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "<", "<=", ">", ">=", "==",
                                              "!=", "and", "or", "&&", "||"]), inner)
            .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["not ", "!", "-", "+"]), inner).map(lambda t: t[0] + t[1]),
            st.tuples(st.sampled_from(["len", "min", "max", "abs", "all", "any", "isNaN",
                                       "isInf"]), st.lists(inner, min_size=1, max_size=3))
            .map(lambda t: f"{t[0]}({', '.join(t[1])})"),
            st.lists(inner, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        )  # fmt: skip

    return st.recursive(leaves, extend, max_leaves=12)


@contextlib.contextmanager
def no_code_execution() -> Iterator[None]:
    """Fail if anything evaluates or compiles code to bytecode inside the block (``ast.parse``
    only builds a tree) or imports a module that can touch the system."""
    calls: list[str] = []
    real_compile, real_import = builtins.compile, builtins.__import__
    saved = builtins.compile, builtins.eval, builtins.exec, builtins.__import__

    def guarded_compile(source: Any, filename: Any, mode: Any, flags: int = 0, *a: Any,
                        **k: Any) -> Any:  # fmt: skip
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(f"compile({source!r})")
        return real_compile(source, filename, mode, flags, *a, **k)

    def refuse(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(f"{name}{args!r}")
            raise AssertionError(f"{name} was called")

        return call

    def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("os", "subprocess", "shutil", "socket", "sys"):
            calls.append(f"import {name}")
        return real_import(name, *args, **kwargs)

    builtins.compile = guarded_compile
    builtins.eval = refuse("eval")
    builtins.exec = refuse("exec")
    builtins.__import__ = guarded_import
    try:
        yield
    finally:
        builtins.compile, builtins.eval, builtins.exec, builtins.__import__ = saved
    assert calls == []


FUZZ = settings(max_examples=400, deadline=None)


def _try(text: str, result: Any) -> None:
    with no_code_execution():
        try:
            cond = Condition.parse(text, PATH)
        except InvalidDefinitionError as exc:
            assert PATH in str(exc)
            return
        try:
            assert isinstance(cond.evaluate(result), bool)
        except InvalidInputError:
            pass


@FUZZ
@given(text=st.text(max_size=200), result=results)
def test_fuzz_any_text_is_rejected_or_evaluates_to_a_bool(text: str, result: Any) -> None:
    _try(text, result)


@FUZZ
@given(text=_grammar(), result=results)
def test_fuzz_grammar_expressions_never_raise_anything_but_loopline_errors(
    text: str, result: Any
) -> None:
    _try(text, result)


@FUZZ
@given(text=st.text(alphabet="result[]()0123456789.+-*/<>=!&|, andortuefalsNIxmi", max_size=80),
       result=results)  # fmt: skip
def test_fuzz_near_grammar_text_never_raises_anything_but_loopline_errors(
    text: str, result: Any
) -> None:
    _try(text, result)


def test_a_malicious_condition_touches_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    attacks = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        "result.__class__.__init__.__globals__",
        f"[c for c in ().__class__.__base__.__subclasses__()] and open('{marker}', 'w')",
    ]
    for text in attacks:
        with no_code_execution(), pytest.raises(InvalidDefinitionError):
            Condition.parse(text, PATH)
    assert not marker.exists()


def test_depth_limit_keeps_evaluation_off_the_recursion_limit() -> None:
    deep = "(" * (MAX_DEPTH // 2) + "result" + " + 1)" * (MAX_DEPTH // 2) + " > 0"
    assert holds(deep, 1.0) is True
