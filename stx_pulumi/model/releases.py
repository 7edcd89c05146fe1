"""Releases: what each `up` deployed, kept with the stack, and the rollback pin (pure).

Every `up` (and `rollback`) adds a record to the stack's `releases` output, which the engine
carries forward from the last deployment (the last KEEP releases and, apart, the last KEEP
rollbacks: `kept`), so every teammate and CI run
reads the same history from the shared backend. Whether a release's verification passed is
known only after the update: it is kept as the stack tag `stx-verify-<n>` (stack tags live in
the backend too; DIY backends have them since Pulumi 3.211). A good release = deployed and
verified.

A rollback stores a pin in the stack config (`stx:pin`), honoured by every later `up` until
`up --unpin`: the release's revisions take all traffic (fast path: the revisions still exist,
no new revision, no build), or else its image digest is deployed again (no build).
"""

from __future__ import annotations

import configparser
import getpass
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stx_pulumi.errors import InputError, shown, whole_number

KEEP = 10
VERIFY_TAG = "stx-verify-"
RELEASE_TAG = "rel-"
DIGEST_RE = re.compile(r"^[a-z0-9.-]+-docker\.pkg\.dev/[^@\s]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Release:
    """One deployment: which image, which revision of each service, by whom, and why."""

    n: int
    time: str
    who: str
    tag: str
    digest: str
    revisions: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    kind: str = "up"  # or "rollback"
    verified: str | None = None  # "passed" | "failed" | None (not verified)
    scan: str | None = None  # the vulnerability gate's judgement (protected envs)
    accepted_risk: str | None = None  # why it went ahead anyway (--accept-risk)

    @property
    def good(self) -> bool:
        return self.verified == "passed"


@dataclass(frozen=True)
class Pin:
    """What a rollback fixed: the image the services run and, on the fast path, the
    revision each service routes all traffic to."""

    release: int
    digest: str
    revisions: Mapping[str, str] = field(default_factory=dict)
    tag: str | None = None  # the image tag of what serves (pins of earlier releases: none)

    def served_tag(self, previous: Sequence[Any], default: str) -> str:
        """The tag of the image this pin serves: its own, else the pinned release's record,
        else `default` — never the source's tag next to another release's digest."""
        if self.tag:
            return self.tag
        found = [r.get("tag") for r in previous
                 if isinstance(r, Mapping) and r.get("n") == self.release and r.get("tag")]
        return str(found[-1]) if found else default


def history(outputs: Mapping[str, Any], tags: Mapping[str, str]) -> list[Release]:
    """The stack's releases, oldest first, with what their verifications said."""
    out = []
    for record in outputs.get("releases") or []:
        if not isinstance(record, Mapping) or "n" not in record:
            continue
        n = int(record["n"])
        out.append(Release(
            n=n, time=str(record.get("time", "")), who=str(record.get("who", "")),
            tag=str(record.get("tag", "")), digest=str(record.get("digest") or ""),
            revisions=dict(record.get("revisions") or {}), message=record.get("message"),
            kind=str(record.get("kind", "up")), verified=tags.get(f"{VERIFY_TAG}{n}"),
            scan=record.get("scan"), accepted_risk=record.get("accepted_risk")))
    return out


def record(previous: list[Any], tag: str, message: str | None, kind: str,
           environ: Mapping[str, str], now: datetime, settings: str = "") -> dict[str, Any]:
    """The next release's record, but for what only the update knows (digest, revisions);
    `settings`: the digest of the settings deployed (`up --changed` compares it)."""
    last = max((int(r.get("n", 0)) for r in previous if isinstance(r, Mapping)), default=0)
    return {"n": last + 1, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "who": who(environ),
            "tag": tag, "message": message, "kind": kind,
            **({"settings": settings} if settings else {})}


def kept(records: list[Any]) -> list[Any]:
    """The records a stack keeps, oldest first: the last KEEP releases (up, promote) and the
    last KEEP rollbacks, apart, so a burst of rollbacks in a class never pushes the releases
    they roll back to out of the history."""
    def last(rollbacks: bool) -> list[int]:
        found = [i for i, r in enumerate(records)
                 if isinstance(r, Mapping) and (r.get("kind") == "rollback") == rollbacks]
        return found[-KEEP:]

    keep = set(last(True)) | set(last(False))
    return [r for i, r in enumerate(records) if i in keep]


def who(environ: Mapping[str, str]) -> str:
    """The CI actor, else the git identity (~/.gitconfig), else the local user."""
    if environ.get("GITHUB_ACTOR"):
        return f"{environ['GITHUB_ACTOR']} (GitHub Actions)"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(Path(environ.get("HOME") or Path.home()) / ".gitconfig", encoding="utf-8")
        name = parser.get("user", "name", fallback="")
        email = parser.get("user", "email", fallback="")
    except (configparser.Error, OSError, UnicodeDecodeError):
        name = email = ""
    if name or email:
        return f"{name} <{email}>".strip() if email else name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def serving(releases: list[Release], pin: Pin | None) -> Release | None:
    """The release serving now: the pinned one, else the newest."""
    if pin is not None:
        return next((r for r in releases if r.n == pin.release), None)
    return releases[-1] if releases else None


def target(releases: list[Release], pin: Pin | None, to: str | None) -> Release:
    """The release to roll back to: `--to` N, a tag (rel-N, sha-…, src-…) or a revision name;
    by default the newest good release older than the one serving now."""
    now = serving(releases, pin)
    if to is None:
        older = [r for r in releases if r.good and now is not None and r.n < now.n]
        if not older:
            raise InputError("--to: no good release (deployed and verified) before the one "
                             f"serving now ({_name(now)}); `stx-pulumi history` lists them")
        return older[-1]
    wanted = to.removeprefix(RELEASE_TAG)
    for release in reversed(releases):
        if release.n == whole_number(wanted) or to == release.tag or (
                to in release.revisions.values()):
            if now is not None and release.n == now.n:
                raise InputError(f"--to: release {release.n} is the one serving now")
            if not release.digest:
                raise InputError(f"--to: release {release.n} recorded no image digest")
            return release
    raise InputError(f"--to: no release {shown(to)} among the last {KEEP} (see "
                     "`stx-pulumi history`)")


def read_pin(value: Any, problems: list[str]) -> Pin | None:
    """`stx:pin` from the stack config (written by `rollback`)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            value = None
    try:
        tag = value.get("tag")
        pin = Pin(release=int(value["release"]), digest=str(value["digest"]),
                  revisions={str(k): str(v) for k, v in (value.get("revisions") or {}).items()},
                  tag=str(tag) if tag else None)
    except (TypeError, KeyError, ValueError):
        problems.append(f"stx:pin: {shown(value)} is not a rollback pin (release, digest, "
                        "revisions): run `stx-pulumi up --unpin`")
        return None
    if not DIGEST_RE.fullmatch(pin.digest):
        problems.append(f"stx:pin.digest: {shown(pin.digest)} is not an Artifact Registry image "
                        "digest (…-docker.pkg.dev/…@sha256:…)")
    return pin


def _name(release: Release | None) -> str:
    return f"release {release.n}" if release else "none"
