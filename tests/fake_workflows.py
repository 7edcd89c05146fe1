"""A stand-in for Cloud Workflows that runs a workflow's source the way the service would, for
the part of the syntax stx-pulumi's event workflow uses, and refuses everything else (a step
kind, a call or a name it does not know is an error, never a silent skip).

Known: `main` with `params: [args]`; steps as one-key maps; `switch` (conditions tried in
order; the first true one's `steps` run, else the next step), `call: sys.log`, `call:
http.patch` (`url`, `query`, `auth`, `body`), `return`, `raise`. Expressions `${...}` use `args.X`,
`sys.now()`, string and number literals, `+`, comparisons, `and`, `or` (Workflows syntax
reference: expressions, conditions, standard library `sys.now`, `http.patch`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

KNOWN_CALLS = ("sys.log", "http.patch")
TOKEN_RE = re.compile(r'\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")|'
                      r"(?P<name>sys\.now\(\)|args\.[A-Za-z_]\w*|and|or|not)|"
                      r"(?P<op>!=|==|>=|<=|<|>|\+|\(|\)))")


class WorkflowError(Exception):
    """What Workflows would refuse: a syntax or a call this stand-in does not know."""


@dataclass
class Execution:
    """One run: what it logged, the HTTP calls it made, and its result or error."""

    result: Any = None
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def run(source: str, argument: dict[str, Any], now: float) -> Execution:
    """Run `source` with `argument` (as a Scheduler job's execution passes it) at `now`."""
    definition = yaml.safe_load(source)
    main = definition.get("main") if isinstance(definition, dict) else None
    if not isinstance(main, dict) or main.get("params") != ["args"]:
        raise WorkflowError("main must take params: [args]")
    execution = Execution()
    try:
        done, value = _steps(main.get("steps") or [], {"args": argument, "now": now},
                             execution)
        execution.result = value if done else None
    except _Raised as err:
        execution.error = str(err)
    return execution


class _Raised(Exception):
    pass


def _steps(steps: list[Any], scope: dict[str, Any], out: Execution) -> tuple[bool, Any]:
    for step in steps:
        if not isinstance(step, dict) or len(step) != 1:
            raise WorkflowError(f"a step must be a map of one name: {step!r}")
        (_, body), = step.items()
        done, value = _step(body, scope, out)
        if done:
            return True, value
    return False, None


def _step(body: dict[str, Any], scope: dict[str, Any], out: Execution) -> tuple[bool, Any]:
    kinds = set(body) - {"args"}
    if kinds == {"switch"}:
        for case in body["switch"]:
            unknown = set(case) - {"condition", "steps"}
            if unknown:
                raise WorkflowError(f"switch condition with {sorted(unknown)}")
            if _value(case["condition"], scope) is True:
                return _steps(case.get("steps") or [], scope, out)
        return False, None
    if kinds == {"call"}:
        name, args = body["call"], {k: _value(v, scope) for k, v in (body.get("args") or
                                                                        {}).items()}
        if name not in KNOWN_CALLS:
            raise WorkflowError(f"call {name} is not known here")
        if name == "sys.log":
            out.logs.append(str(args.get("text")))
        else:
            if set(args) - {"url", "query", "auth", "body"}:
                raise WorkflowError(f"http.patch args {sorted(args)}")
            if (args.get("auth") or {}).get("type") not in ("OAuth2", "OIDC", None):
                raise WorkflowError("auth.type must be OAuth2 or OIDC")
            out.calls.append({"method": "PATCH", **args})
        return False, None
    if kinds == {"return"}:
        return True, _value(body["return"], scope)
    if kinds == {"raise"}:
        raise _Raised(str(_value(body["raise"], scope)))
    raise WorkflowError(f"a step of kind {sorted(kinds)} is not known here")


def _value(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _value(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v, scope) for v in value]
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return _expression(value[2:-1], scope)
    return value


def _expression(text: str, scope: dict[str, Any]) -> Any:
    """The expression as Python: each token checked against what Workflows has."""
    python, pos = [], 0
    while pos < len(text.rstrip()):
        match = TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise WorkflowError(f"cannot read {text[pos:]!r} in ${{{text}}}")
        pos = match.end()
        if match.group("num") or match.group("str"):
            python.append(repr(json.loads(match.group("num") or match.group("str"))))
        elif match.group("name") == "sys.now()":
            python.append("__now")
        elif (match.group("name") or "").startswith("args."):
            key = match.group("name")[5:]
            if key not in scope["args"]:
                raise _Raised(f"KeyError: key not found: {key}")
            python.append(f"__args[{key!r}]")
        else:
            python.append(match.group("name") or match.group("op"))
    return eval(" ".join(python), {"__builtins__": {}},
                {"__now": scope["now"], "__args": scope["args"]})
