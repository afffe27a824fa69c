"""The one place that talks to fhirpathpy: compile once, evaluate many, added functions.

fhirpathpy lacks some functions that FHIR invariants use; they are added here:
- hasValue(): true for a single primitive with a value;
- htmlChecks(): the narrative rules of txt-1/txt-2 (see narrative.py);
- resolve(): references inside the resource (#contained) and inside the Bundle being validated.
trace() output is swallowed: the engine never prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from validator.fhir.jsontext import items_of
from validator.fhir.narrative import html_problems


class FhirPathError(Exception):
    """An expression that does not parse, or an evaluation that failed."""


@dataclass
class EvalContext:
    """What resolve() may look in: the resource being validated and its Bundle's entries."""

    root: dict | None = None
    bundle: dict[str, dict] = field(default_factory=dict)  # fullUrl or Type/id -> resource


_CURRENT: ContextVar[EvalContext | None] = ContextVar("fhirpath_eval_context", default=None)


def _has_value(inputs: list) -> list[bool]:
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))]


def _html_checks(inputs: list) -> list[bool]:
    return [all(isinstance(i, str) and not html_problems(i) for i in inputs)]


def _resolve(inputs: list) -> list:
    ctx = _CURRENT.get() or EvalContext()
    found = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else item
        if not isinstance(ref, str):
            continue
        target = resolve_reference(ref, ctx)
        if target is not None:
            found.append(target)
    return found


def resolve_reference(ref: str, ctx: EvalContext) -> dict | None:
    """Find the target of a literal reference inside the resource or its Bundle, else None."""
    if ref.startswith("#"):
        for res in items_of((ctx.root or {}).get("contained")):
            if isinstance(res, dict) and res.get("id") == ref[1:]:
                return res
        return None
    if ref in ctx.bundle:
        return ctx.bundle[ref]
    parts = ref.split("/")
    if len(parts) >= 2:
        return ctx.bundle.get(f"{parts[-2]}/{parts[-1]}")
    return None


_USER_FUNCTIONS = {
    "hasValue": {"fn": _has_value},
    "htmlChecks": {"fn": _html_checks},
    "resolve": {"fn": _resolve},
}


def _no_trace(*_args: Any, **_kwargs: Any) -> None:
    return None


@cache
def _model(name: str) -> dict:
    from fhirpathpy.models import models

    return models[name]


def check_syntax(expression: str) -> None:
    """Raise FhirPathError for an expression that is not valid FHIRPath.

    fhirpathpy's own parse() recovers from syntax errors silently (its error listener ignores
    them), so a broken invariant would compile into something that evaluates wrongly. The same
    generated grammar is run here with a listener that raises, and must consume all the text."""
    from antlr4 import CommonTokenStream, InputStream, Token
    from antlr4.error.ErrorListener import ErrorListener
    from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
    from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

    class _Raise(ErrorListener):
        def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):
            raise FhirPathError(f"expression does not parse: column {column + 1}: {msg}")

    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    parser.expression()
    token = parser.getCurrentToken()
    if token.type != Token.EOF:
        raise FhirPathError(f"expression does not parse: unexpected {token.text!r} at column {token.column + 1}")


@cache
def compile_expression(expression: str, model: str = "r4") -> Callable[..., list]:
    """Parse an expression once per process; the result is reused for every resource."""
    # Imported lazily: the FHIRPath parser is the slowest import of the validator.
    from fhirpathpy import compile as fp_compile

    check_syntax(expression)
    try:
        return fp_compile(
            expression,
            model=_model(model),
            options={"userInvocationTable": _USER_FUNCTIONS, "traceFn": _no_trace},
        )
    except Exception as exc:  # fhirpathpy raises plain Exceptions for syntax errors
        raise FhirPathError(f"expression does not parse: {exc}") from None


def evaluate(
    fn: Callable[..., list],
    node: Any,
    type_path: str,
    resource: dict,
    root_resource: dict,
    ctx: EvalContext,
) -> list:
    """Evaluate a compiled expression with `node` as focus, typed as `type_path`
    (e.g. 'Period' or 'ImagingStudy.series'), and %resource / %rootResource set."""
    from fhirpathpy.engine.nodes import ResourceNode

    focus = node if (isinstance(node, dict) and "resourceType" in node) else ResourceNode.create_node(node, type_path)
    token = _CURRENT.set(ctx)
    try:
        return fn(focus, {"resource": resource, "rootResource": root_resource})
    except Exception as exc:  # any failure inside fhirpathpy means "could not evaluate"
        message = _OBJECT.sub(r"\1", str(exc))
        raise FhirPathError(f"{type(exc).__name__}: {message}") from None
    finally:
        _CURRENT.reset(token)


# fhirpathpy names the values it could not use by their Python repr: the class is what a reader
# can use, the memory address makes the same finding differ from run to run.
_OBJECT = re.compile(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>")


def truthy(result: list) -> bool | None:
    """FHIRPath boolean of an invariant result: True, False, or None for empty."""
    if not result:
        return None
    if len(result) == 1 and isinstance(result[0], bool):
        return result[0]
    raise FhirPathError(f"invariant did not evaluate to a boolean: {result!r}"[:300])
