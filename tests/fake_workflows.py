"""A stand-in for Cloud Workflows that runs a workflow's source the way the service would, for
the part of the syntax stx-pulumi's event workflow uses, and refuses everything else (a step
kind, a call or a name it does not know is an error, never a silent skip).

Known: `main` with one parameter; steps as one-key maps; `assign`, `switch` (conditions tried
in order; the first true one's `steps` run, else the next step), `call: sys.log`, `call:
http.patch` (`url`, `query`, `auth`, `body`), `return`, `raise`. Expressions `${...}` use
variables and their keys (`args.X`, `event.data.message.data`), `sys.now()`, `json.decode`,
`base64.decode`, `text.decode`, string and number literals, `+`, comparisons, `and`, `or`
(Workflows syntax reference: expressions, conditions, standard library `sys.now`,
`http.patch`, `json.decode`, `base64.decode`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

KNOWN_CALLS = ("sys.log", "http.patch")
TOKEN_RE = re.compile(r'\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")|'
                      r"(?P<func>sys\.now\(\)|json\.decode|base64\.decode|text\.decode)|"
                      r"(?P<kw>(?:and|or|not)\b)|(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)|"
                      r"(?P<op>!=|==|>=|<=|<|>|\+|\(|\)))")
# The standard library functions the guard workflow uses (Workflows reference: base64.decode
# gives bytes, json.decode takes bytes or a string, text.decode bytes → string)
FUNCTIONS = {"json.decode": lambda data: json.loads(data),
             "base64.decode": lambda text: __import__("base64").b64decode(text),
             "text.decode": lambda data: data.decode("utf-8")}


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
    params = main.get("params") if isinstance(main, dict) else None
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
        raise WorkflowError("main must take one parameter: params: [NAME]")
    execution = Execution()
    try:
        done, value = _steps(main.get("steps") or [], {"vars": {params[0]: argument},
                                                       "now": now}, execution)
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
    if kinds == {"assign"}:
        for item in body["assign"]:
            (name, expression), = item.items()
            scope["vars"][name] = _value(expression, scope)
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
    """The expression as Python: each token checked against what Workflows has; a name is a
    variable and its keys (`event.data.message.data`), a missing one an error as in
    Workflows."""
    python, pos = [], 0
    while pos < len(text.rstrip()):
        match = TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise WorkflowError(f"cannot read {text[pos:]!r} in ${{{text}}}")
        pos = match.end()
        if match.group("num") or match.group("str"):
            python.append(repr(json.loads(match.group("num") or match.group("str"))))
        elif match.group("func") == "sys.now()":
            python.append("__now")
        elif match.group("func"):
            python.append(f"__call[{match.group('func')!r}]")
        elif match.group("name"):
            python.append(repr(_lookup(match.group("name"), scope["vars"])))
        else:
            python.append(match.group("kw") or match.group("op"))
    return eval(" ".join(python), {"__builtins__": {}},
                {"__now": scope["now"], "__call": FUNCTIONS})


def _lookup(path: str, variables: dict[str, Any]) -> Any:
    first, *keys = path.split(".")
    if first not in variables:
        raise WorkflowError(f"{first} is not defined")
    value = variables[first]
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise _Raised(f"KeyError: key not found: {key}")
        value = value[key]
    return value
