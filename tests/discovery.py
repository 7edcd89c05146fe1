"""Google's published API contracts, from the discovery documents that google-api-python-client
ships (`googleapiclient/discovery_cache/documents/`): every request a local fake of Google
receives is checked against them, so a fake refuses what Google would refuse.

A request must name a method that exists for its HTTP verb and path (path parameters matching
their patterns), use only query parameters defined for that method or standard to the API
(with values of their type and enum), carry a JSON body only where the method takes one and
then fit the request schema recursively (unknown fields, wrong types and values outside an
enum are violations), and name real fields in every update mask. Media uploads must match the
method's `mediaUpload` protocol. `check` returns the method's id or raises `Violation` naming
the method and the field.

Cloud Quotas has no discovery document in the package (2.202.0): `NOT_PUBLISHED` says so, and
its fake follows the REST reference by hand.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

DOCUMENTS = {  # the API prefix the fakes route by → its discovery document
    "artifactregistry": "artifactregistry.v1.json", "cloudbilling": "cloudbilling.v1.json",
    "cloudbuild": "cloudbuild.v1.json", "cloudkms": "cloudkms.v1.json",
    "cloudresourcemanager": "cloudresourcemanager.v1.json",
    "cloudscheduler": "cloudscheduler.v1.json", "iam": "iam.v1.json",
    "logging": "logging.v2.json", "monitoring": "monitoring.v3.json", "run": "run.v2.json",
    "serviceusage": "serviceusage.v1.json", "storage": "storage.v1.json",
    "workflows": "workflows.v1.json", "workflowexecutions": "workflowexecutions.v1.json",
    "containeranalysis": "containeranalysis.v1.json",
}
NOT_PUBLISHED = {"cloudquotas": "Cloud Quotas is not among the discovery documents of "
                                "google-api-python-client 2.202.0"}
DURATION_RE = re.compile(r"^-?\d+(\.\d{1,9})?s$")
DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class Violation(AssertionError):
    """A request off Google's published contract."""


@cache
def document(api: str) -> dict[str, Any]:
    import googleapiclient

    folder = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    return json.loads((folder / DOCUMENTS[api]).read_text())


def methods(node: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (node.get("methods") or {}).values()
    for child in (node.get("resources") or {}).values():
        yield from methods(child)


def _template(path: str) -> re.Pattern[str]:
    """A discovery path (`v2/{+name}:getIamPolicy`) as a regex with one group per parameter."""
    out, last = "", 0
    for match in re.finditer(r"\{(\+?)([^}]+)\}", path):
        out += re.escape(path[last:match.start()])
        name = re.sub(r"\W", "_", match.group(2))
        out += f"(?P<{name}>.+?)" if match.group(1) else f"(?P<{name}>[^/]+?)"
        last = match.end()
    return re.compile("^" + out + re.escape(path[last:]) + "$")


def find(api: str, verb: str, path: str) -> tuple[dict[str, Any], dict[str, str], bool]:
    """The method `verb path` calls (path after the API's root URL), its path parameters, and
    whether it is a media upload; Violation when no method fits."""
    doc = document(api)
    from urllib.parse import unquote

    found = []  # as gRPC transcoding does, the most literal template wins (`:getIamPolicy`)
    for method in methods(doc):
        if method["httpMethod"] != verb:
            continue
        forms = [(doc["servicePath"] + method["path"], False)]
        simple = ((method.get("mediaUpload") or {}).get("protocols") or {}).get("simple")
        if simple:
            forms.append((simple["path"].lstrip("/"), True))
        for form, media in forms:
            match = _template(form).match(path.lstrip("/"))
            if not match:
                continue
            values = {k: unquote(v) for k, v in match.groupdict().items()}
            params = method.get("parameters") or {}
            if all(re.search(params[k]["pattern"], v) for k, v in values.items()
                   if (params.get(k) or {}).get("pattern")):
                found.append((len(re.sub(r"\{[^}]*\}", "", form)), method, values, media))
    if not found:
        raise Violation(f"{api}: no method for {verb} /{path.lstrip('/')}")
    _, method, values, media = max(found, key=lambda f: f[0])
    return method, values, media


def check(api: str, verb: str, path: str, query: Sequence[tuple[str, str]], body: bytes,
          content_type: str = "") -> str:
    """The method id of a request that keeps Google's contract; Violation otherwise."""
    doc = document(api)
    method, _, media = find(api, verb, path)
    where = method["id"]
    params = method.get("parameters") or {}
    standard = doc.get("parameters") or {}
    seen: dict[str, int] = {}
    for name, value in query:
        spec = params.get(name) if (params.get(name) or {}).get("location") == "query" else (
            standard.get(name))
        if spec is None:
            raise Violation(f"{where}: unknown query parameter {name!r}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1 and not spec.get("repeated"):
            raise Violation(f"{where}: query parameter {name!r} given twice")
        _scalar(value, spec, f"{where}: query parameter {name}")
        if spec.get("format") == "google-fieldmask" and method.get("request"):
            for field in value.split(","):
                _field_path(doc, method["request"]["$ref"], field, f"{where}: {name}")
    for name, spec in params.items():
        if spec.get("required") and spec.get("location") == "query" and name not in seen:
            raise Violation(f"{where}: the required query parameter {name!r} is missing")
    if media:
        if dict(query).get("uploadType") != "media":
            raise Violation(f"{where}: a simple media upload needs uploadType=media")
        return where
    if not method.get("request"):
        if body.strip():
            raise Violation(f"{where}: takes no request body")
        return where
    if not body.strip():
        return where  # an empty message: every field of a request is optional on the wire
    if "json" not in content_type:
        raise Violation(f"{where}: the request body is not JSON ({content_type or 'no type'})")
    try:
        data = json.loads(body)
    except ValueError:
        raise Violation(f"{where}: the request body is not valid JSON") from None
    validate(doc, data, {"$ref": method["request"]["$ref"]}, f"{where}: request")
    return where


def validate(doc: Mapping[str, Any], value: Any, schema: Mapping[str, Any], where: str) -> None:
    """`value` fits `schema` (a discovery schema, `$ref`s resolved in `doc`)."""
    if "$ref" in schema:
        schema = doc["schemas"][schema["$ref"]]
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise Violation(f"{where}: expected an object, got {_shown(value)}")
        props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                validate(doc, item, props[key], f"{where}.{key}")
            elif extra is not None:
                validate(doc, item, extra, f"{where}.{key}")
            else:
                raise Violation(f"{where}: unknown field {key!r} ({schema.get('id', 'map')} "
                                "has no such field)")
    elif kind == "array":
        if not isinstance(value, list):
            raise Violation(f"{where}: expected a list, got {_shown(value)}")
        for i, item in enumerate(value):
            validate(doc, item, schema.get("items") or {}, f"{where}[{i}]")
    elif kind != "any":
        _scalar(value, schema, where, json_value=True)


def _scalar(value: Any, schema: Mapping[str, Any], where: str, json_value: bool = False
            ) -> None:
    kind, fmt = schema.get("type"), schema.get("format")
    text = value if isinstance(value, str) else None
    if kind == "boolean":
        ok = isinstance(value, bool) if json_value else value in ("true", "false")
    elif kind == "integer":
        ok = (isinstance(value, int) and not isinstance(value, bool)) if json_value else (
            bool(re.fullmatch(r"-?\d+", str(value))))
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if json_value \
            else _is_number(str(value))
    elif fmt in ("int64", "uint64"):  # proto3 JSON: a string, or a number
        ok = bool(re.fullmatch(r"-?\d+", str(value))) and not isinstance(value, bool)
    else:
        ok = text is not None
    if not ok:
        raise Violation(f"{where}: expected {fmt or kind}, got {_shown(value)}")
    if text is None:
        return
    if schema.get("enum") and text not in schema["enum"]:
        raise Violation(f"{where}: {text!r} is not one of {', '.join(schema['enum'])}")
    if fmt == "google-duration" and not DURATION_RE.match(text):
        raise Violation(f"{where}: {text!r} is not a duration such as '180s'")
    if fmt == "google-datetime" and not DATETIME_RE.match(text):
        raise Violation(f"{where}: {text!r} is not an RFC 3339 time")
    if fmt == "byte":
        try:
            base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise Violation(f"{where}: {text[:40]!r} is not base64") from None


def _field_path(doc: Mapping[str, Any], ref: str, path: str, where: str) -> None:
    """An update mask path (`scaling.minInstanceCount`) names a field of the schema `ref`."""
    schema: Mapping[str, Any] = doc["schemas"][ref]
    for part in path.split("."):
        props = schema.get("properties") or {}
        if part not in props:
            raise Violation(f"{where}: {path!r} names no field ({schema.get('id')} has no "
                            f"{part!r})")
        schema = props[part]
        if "$ref" in schema:
            schema = doc["schemas"][schema["$ref"]]
        elif schema.get("type") == "array":
            schema = schema.get("items") or {}
            if "$ref" in schema:
                schema = doc["schemas"][schema["$ref"]]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value)[:60]}"


def check_url(url: str, verb: str, body: bytes, content_type: str = "application/json") -> str:
    """`check` for a whole Google URL (`https://run.googleapis.com/v2/...?updateMask=...`):
    for requests the program embeds (a scheduler job's, a workflow's)."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    api = next((a for a in DOCUMENTS
                if urlsplit(document(a)["rootUrl"]).netloc == parts.netloc), None)
    if api is None:
        raise Violation(f"{parts.netloc}: not an API with a discovery document here")
    return check(api, verb, parts.path, parse_qsl(parts.query, keep_blank_values=True), body,
                 content_type)
