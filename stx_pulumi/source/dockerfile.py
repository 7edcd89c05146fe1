"""What a Dockerfile says about how its image serves, read with a maintained parser.

`dockerfile-parse` handles every ENV form (`ENV K=V`, `ENV K V`, several pairs, continuation
lines), ARG defaults (a global ARG redeclared in a stage keeps its default) and each stage's
context. Only the final stage counts for what runs; `uv.lock` is looked for in every stage.
Pure: text in, facts out.
"""

from __future__ import annotations

import io
import posixpath
import re
from dataclasses import dataclass

_NGINX_INSTALL = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf)\b[^\n]*\b(install|add)\b"
                            r"[^\n]*\bnginx", re.I)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class DockerfileFacts:
    """How the final stage of a Dockerfile serves."""

    serve_mode: str | None = None        # STX_SERVE_MODE set by an ENV of the final stage
    exposed: frozenset[int] = frozenset()  # EXPOSEd ports, ARG/ENV substituted
    has_nginx: bool = False              # installed, copied in, or the base image
    copies_uv_lock: bool = False         # some stage COPYs or ADDs uv.lock
    copies_context_to: str | None = None  # where `COPY . DEST` puts the build context
    copied: tuple[str, ...] = ()  # what the final stage's COPY/ADD take from the context


def read_dockerfile(text: str) -> DockerfileFacts:
    """The facts of a Dockerfile's text; unparseable lines are passed over, as Docker would
    refuse them at build time with its own message."""
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    stages: list[list[tuple[str, str, dict[str, str]]]] = []
    copies_uv_lock = False
    for line, context in zip(parser.structure, parser.context_structure, strict=True):
        instruction, value = line["instruction"], line["value"]
        if instruction == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((instruction, value, {**context.args, **context.envs}))
        if instruction in ("COPY", "ADD") and re.search(r"\buv\.lock\b", value):
            copies_uv_lock = True
    final = stages[-1] if stages else []
    base = (parser.baseimage or "").lower()
    return DockerfileFacts(
        serve_mode=_final_env(final, "STX_SERVE_MODE"),
        exposed=frozenset(p for ins, value, env in final if ins == "EXPOSE"
                          for p in _ports(value, env)),
        has_nginx=base.startswith(("nginx", "docker.io/nginx", "docker.io/library/nginx"))
        or any(_nginx_line(ins, value) for ins, value, _ in final),
        copies_uv_lock=copies_uv_lock,
        copies_context_to=_context_destination(final),
        copied=_copied(final),
    )


def _final_env(stage: list[tuple[str, str, dict[str, str]]], name: str) -> str | None:
    values = [env.get(name) for ins, _, env in stage if ins == "ENV"]
    value = values[-1] if values else None
    return value.strip("\"'") if value else None


def _ports(value: str, env: dict[str, str]) -> list[int]:
    ports = []
    for token in _substitute(value, env).split():
        number = token.split("/", 1)[0]
        if number.isascii() and number.isdigit():
            ports.append(int(number))
    return ports


def _substitute(value: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(3), m.group(2) or ""), value)


def _nginx_line(instruction: str, value: str) -> bool:
    if instruction == "RUN":
        return bool(_NGINX_INSTALL.search(value))
    if instruction == "COPY" and "--from=" in value:
        return "nginx" in value.lower()  # the binary or config copied from an nginx stage
    return False


def _copied(stage: list[tuple[str, str, dict[str, str]]]) -> tuple[str, ...]:
    """The build-context sources of the stage's COPY and ADD (not `--from=` another stage or
    image, not URLs), normalized: `manuals/`, `./manuals` → `manuals`; `.` for the whole."""
    sources: list[str] = []
    for instruction, value, env in stage:
        if instruction not in ("COPY", "ADD"):
            continue
        flags = [p for p in value.split() if p.startswith("--")]
        parts = [p for p in value.split() if not p.startswith("--")]
        if any(f.startswith("--from") for f in flags) or len(parts) < 2:
            continue
        for src in parts[:-1]:
            src = _substitute(src.strip("\"'[],"), env)
            if "://" not in src:
                sources.append(posixpath.normpath(src.removeprefix("./")) if src else ".")
    return tuple(sources)


def _context_destination(stage: list[tuple[str, str, dict[str, str]]]) -> str | None:
    workdir = "/"
    for instruction, value, env in stage:
        if instruction == "WORKDIR":
            path = _substitute(value.strip(), env)
            workdir = path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"
        elif instruction in ("COPY", "ADD"):
            parts = [p for p in value.split() if not p.startswith("--")]
            if len(parts) >= 2 and parts[0] in (".", "./"):
                dest = parts[-1]
                return posixpath.normpath(dest if dest.startswith("/")
                                          else f"{workdir.rstrip('/')}/{dest}")
    return None
