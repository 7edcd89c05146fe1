"""Names: what apps, envs, books and stacks may be called, and the names of what a stack
makes in Google Cloud (services, accounts, registry) derived from them. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from stx_pulumi.errors import shown

APP_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")


ENV_RE = re.compile(r"^[a-z][a-z0-9-]*$")


PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


MEMORY_RE = re.compile(r"^([1-9][0-9]*)(Mi|Gi)$")


LABEL_RE = re.compile(r"^[a-z0-9_-]{0,63}$")


HOST_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


SECRET_REF_RE = re.compile(r"^([A-Za-z0-9_-]{1,255})(?::([1-9][0-9]*|latest))?$")


ZONE_RE = re.compile(r"^[0-9a-f]{32}$")


SERVICE_NAME_MAX = 49


SERVICE_ACCOUNT_ID_MAX = 30


def stack_name(app: str, env: str) -> str:
    """The Pulumi stack of an app in an environment."""
    return f"{app}.{env}"


def split_stack_name(stack: str) -> tuple[str, str]:
    """`hello-course.dev` → (`hello-course`, `dev`)."""
    app, _, env = stack.partition(".")
    return app, env


def claimed_names(app: str, env: str, books: Iterable[str] = ()) -> dict[str, str]:
    """The Cloud Run service names a stack makes (each also the stem of its registry and
    accounts), with what makes them: `<app>-<env>`, and `<app>-<book>-<env>` per book. App,
    env and book names may hold '-', so two stacks can claim one name: `up` checks."""
    names = {f"{app}-{env}": stack_name(app, env)}
    names.update({f"{app}-{book}-{env}": f"book {book} of {stack_name(app, env)}"
                  for book in books})
    return names


def service_account_id(app: str, env: str, role: str = "run") -> str:
    """`<app>-<env>-<role>`, shortened with a hash suffix to fit 6-30 characters."""
    full = f"{app}-{env}-{role}"
    if len(full) <= SERVICE_ACCOUNT_ID_MAX:
        return full
    suffix = hashlib.sha256(full.encode()).hexdigest()[:6]
    head = full[: SERVICE_ACCOUNT_ID_MAX - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


def secret_member_name(service: str, secret: str) -> str:
    """The logical name of the runtime account's access to one secret: one per secret, however
    many variables read it (IAM members are non-authoritative: two resources for one member
    share one binding, and deleting either removes it)."""
    return f"{service}-secret-{secret}"


def is_apex(domain: str) -> bool:
    """A bare registered domain (two labels) needs A/AAAA records, not a CNAME."""
    return domain.count(".") == 1


def env_problem(env: str) -> str | None:
    """Why `env` cannot name an environment, or None."""
    if ENV_RE.fullmatch(env) and len(env) <= 12 and not env.endswith("-"):
        return None
    return (f"env (--env) {shown(env)}: use 1-12 lowercase letters, digits or '-', starting with a "
            "letter")
