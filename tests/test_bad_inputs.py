"""Every bad input is refused before anything runs (issue #8): exit 2, a message naming the
option, key or file, and no file and no state created, changed or removed.

The stand-in Pulumi CLI is on PATH for every case, so a refusal proves the input was checked
before the engine: a missing engine would be exit 3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import PulumiStandIn
from helpers import refused

STACK_FILE = "stacks/Pulumi.hello-course.dev.yaml"

# Deployment options shared by plan, preview and up: (arguments, what the message names).
BAD_DEPLOY_OPTIONS: list[tuple[tuple[str, ...], str]] = [
    (("--max", "0"), "stx:maxInstances (--max)"),
    (("--max", "1001"), "stx:maxInstances (--max)"),
    (("--min", "-1"), "stx:minInstances (--min)"),
    (("--min", "5", "--max", "2"), "stx:minInstances (--min)"),
    (("--cpu", "3"), "stx:cpu (--cpu)"),
    (("--memory", "1Tb"), "stx:memory (--memory)"),
    (("--memory", "64Gi"), "stx:memory (--memory)"),
    (("--concurrency", "0"), "stx:concurrency (--concurrency)"),
    (("--timeout", "3601"), "stx:timeout (--timeout)"),
    (("--serve-mode", "both"), "stx:serveMode (--serve-mode)"),
    (("--region", "Europe"), "gcp:region (--region)"),
    (("--project", "X"), "gcp:project (--project)"),
    (("--domain", "not a domain"), "stx:domain (--domain)"),
    (("--domain", "c.example.org", "--cloudflare-zone", "xyz"),
     "stx:cloudflareZoneId (--cloudflare-zone)"),
    (("--env-var", "K_FOO=1"), "stx:envVars (--env-var)"),
    (("--env-var", "FOLDER=x"), "stx:folder"),
    (("--env-var", "NOEQUALS"), "--env-var"),
    (("--secret-env", "FOO=a", "--secret-env", "foo=b"), "differ only by case"),
    (("--secret-env", "BAD=not/a/secret"), "stx:secretEnv (--secret-env)"),
    (("--env", ""), "env (--env)"),
    (("--env", "Prod"), "env (--env)"),
    (("--path", "no/such/folder"), "does not exist"),
    # books (issue #10): hello-course's own folder holds a book.py, so `.` is a good FOLDER
    (("--book", "Intro=."), "stx:books.Intro"),
    (("--book", "intro=nowhere"), "stx:books.intro.folder (--book intro=FOLDER)"),
    (("--book", "intro=../.."), "stx:books.intro.folder (--book intro=FOLDER)"),
    (("--book", "NOEQUALS"), "--book"),
    (("--book", "a" * 40 + "=."), "within 49 characters"),
    (("--max", "intro=5"), "stx:books.intro: no folder: add it with --book intro=FOLDER"),
    (("--book", "intro=.", "--max", "intro=0"), "stx:books.intro.maxInstances (--max intro="),
    (("--book", "intro=.", "--max", "intro=x"), "stx:books.intro.maxInstances (--max intro="),
    (("--book", "intro=.", "--memory", "intro=1Tb"), "stx:books.intro.memory (--memory intro="),
    (("--book", "intro=.", "--min", "intro=3", "--max", "2"), "stx:books.intro.minInstances"),
    (("--book", "intro=.", "--folder", "."), "stx:folder (--folder): not with stx:books"),
    (("--book", "intro=.", "--domain", "c.example.org"),
     "stx:domain (--domain): not with stx:books"),
    (("--book", "a=.", "--book", "b=.", "--domain", "a=c.example.org", "--domain",
      "b=c.example.org"), "also the domain of book a"),
    (("--max", "=5"), "--max: '=5' is not VALUE or BOOK=VALUE"),
]


def _write(relative: str, text: str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / relative).write_text(text)
    return setup


def _config(**values: object) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        file = ws / STACK_FILE
        data = yaml.safe_load(file.read_text())
        data["config"].update({k.replace("__", ":"): v for k, v in values.items()})
        file.write_text(yaml.safe_dump(data))
    return setup


def _none(ws: Path) -> None:
    """No file edited: the command line alone is wrong."""


CASES: list[tuple[str, Callable[[Path], None], tuple[str, ...], str]] = [
    *[(f"{cmd} {' '.join(args)}", _none, (cmd, "hello-course", *args), named)
      for cmd in ("plan", "preview", "up") for args, named in BAD_DEPLOY_OPTIONS],
    ("plan max not a number", _none, ("plan", "hello-course", "--max", "abc"),
     "stx:maxInstances (--max): 'abc' is not a whole number"),
    ("book key misspelt", _config(stx__books={"intro": {"folder": ".", "maxInstance": 3}}),
     ("plan", "hello-course"), "stx:books.intro.maxInstance: not a book setting"),
    ("book not a map", _config(stx__books={"intro": "examples/hello-course"}),
     ("plan", "hello-course"), "stx:books.intro: expected a map with a folder"),
    ("books not a map", _config(stx__books=["intro"]), ("plan", "hello-course"),
     "stx:books (--book): expected a map"),
    ("up unknown option", _none, ("up", "hello-course", "--maxx", "3"), "--maxx"),
    ("unknown command", _none, ("plna",), "No such command 'plna'"),
    ("cost users 0", _none, ("cost", "hello-course", "--users", "0"), "--users"),
    ("cost hours 0", _none, ("cost", "hello-course", "--hours", "0"), "--hours"),
    ("cost hours 1000", _none, ("cost", "hello-course", "--hours", "1000"), "--hours"),
    ("cost missing prices", _none, ("cost", "hello-course", "--prices", "nope.json"),
     "nope.json"),
    ("cost negative price", _write("prices.json", '{"vcpu_second": -1}'),
     ("cost", "hello-course", "--prices", "prices.json"), "vcpu_second in prices.json must be"),
    ("cost NaN price", _write("prices.json", '{"gib_second": NaN}'),
     ("cost", "hello-course", "--prices", "prices.json"), "gib_second in prices.json must be"),
    ("cost unknown price", _write("prices.json", '{"vcpu_secnd": 1}'),
     ("cost", "hello-course", "--prices", "prices.json"), "vcpu_secnd"),
    ("cost prices not json", _write("prices.json", "{"),
     ("cost", "hello-course", "--prices", "prices.json"), "prices.json"),
    ("up wait -1", _none, ("up", "hello-course", "--wait-timeout", "-1"), "--wait-timeout"),
    ("up wait 4000", _none, ("up", "hello-course", "--wait-timeout", "4000"), "--wait-timeout"),
    ("up poll 0", _none, ("up", "hello-course", "--poll-interval", "0"), "--poll-interval"),
    ("up poll 301", _none, ("up", "hello-course", "--poll-interval", "301"), "--poll-interval"),
    ("up unset bogus", _none, ("up", "hello-course", "--unset", "bogus"), "--unset"),
    ("up unset path", _none, ("up", "hello-course", "--unset", "path"), "--unset"),
    ("verify wait -1", _none, ("verify", "hello-course", "--wait-timeout", "-1"),
     "--wait-timeout"),
    ("verify poll 0", _none, ("verify", "hello-course", "--poll-interval", "0"),
     "--poll-interval"),
    ("init backend words", _none, ("init", "--backend", "not a url"), "--backend"),
    ("init backend ftp", _none, ("init", "--backend", "ftp://host/x"), "--backend"),
    ("init backend empty gs", _none, ("init", "--backend", "gs://"), "--backend"),
    ("init secrets garbage", _none, ("init", "--secrets-provider", "garbage"),
     "--secrets-provider"),
    ("init secrets empty kms", _none, ("init", "--secrets-provider", "gcpkms://"),
     "--secrets-provider"),
    ("env use upper", _none, ("env", "use", "PROD"), "env (--env)"),
    ("env use empty", _none, ("env", "use", ""), "env (--env)"),
    ("env use long", _none, ("env", "use", "a" * 13), "env (--env)"),
    *[(f"{cmd} empty env", _none, (cmd, "hello-course", "--env", ""), "env (--env)")
      for cmd in ("destroy", "outputs", "refresh", "cancel", "verify")],
    ("up bad folder name", _write("Bad_App", ""), ("up", "./examples/../Bad_App"), "APP"),
    ("pulumi.yaml broken plan", _write("Pulumi.yaml", "name: [stx"), ("plan", "hello-course"),
     "Pulumi.yaml"),
    ("pulumi.yaml broken up", _write("Pulumi.yaml", "name: [stx"),
     ("up", "hello-course", "--yes"), "Pulumi.yaml"),
    ("pulumi.yaml broken outputs", _write("Pulumi.yaml", "name: [stx"),
     ("outputs", "hello-course"), "Pulumi.yaml"),
    ("pulumi.yaml a list", _write("Pulumi.yaml", "- name\n"), ("stacks",), "Pulumi.yaml"),
    ("stack file unknown stx key plan", _config(stx__maxInstanse=20), ("plan", "hello-course"),
     "stx:maxInstanse"),
    ("stack file unknown stx key up", _config(stx__maxInstanse=20),
     ("up", "hello-course", "--yes"), "stx:maxInstanse"),
    ("stack file unknown gcp key", _config(gcp__regoin="x"), ("destroy", "hello-course"),
     "gcp:regoin"),
    ("stack file unknown cloudflare key", _config(cloudflare__apiTokn="x"),
     ("outputs", "hello-course"), "cloudflare:apiTokn"),
    ("stack file config list", _write(STACK_FILE, "config: [1, 2]\n"),
     ("plan", "hello-course"), "Pulumi.hello-course.dev.yaml"),
    ("stack file not yaml", _write(STACK_FILE, "config: {a: [\n"),
     ("refresh", "hello-course"), "Pulumi.hello-course.dev.yaml"),
    ("stack file bad number", _config(stx__maxInstances="many"), ("plan", "hello-course"),
     "stx:maxInstances"),
    ("stack file bad bool", _config(stx__public="sometimes"), ("up", "hello-course", "--yes"),
     "stx:public"),
    ("stack file envVars list", _config(stx__envVars=["A=1"]), ("plan", "hello-course"),
     "stx:envVars"),
    ("settings not json", _write(".stx-pulumi.json", "{env"), ("plan", "hello-course"),
     ".stx-pulumi.json"),
    ("settings unknown key", _write(".stx-pulumi.json", '{"enviroment": "dev"}'),
     ("up", "hello-course", "--yes"), ".stx-pulumi.json"),
    ("settings bad env", _write(".stx-pulumi.json", '{"env": "Prod"}'),
     ("outputs", "hello-course"), ".stx-pulumi.json"),
    ("settings bad provider", _write(".stx-pulumi.json", '{"secretsProvider": "x"}'),
     ("stacks",), ".stx-pulumi.json"),
    ("settings a list", _write(".stx-pulumi.json", "[]"), ("env",), ".stx-pulumi.json"),
]


def test_there_are_at_least_80_cases() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize(("setup", "args", "named"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(workspace: Path, pulumi_cli: PulumiStandIn,
                                                  setup: Callable[[Path], None],
                                                  args: tuple[str, ...], named: str) -> None:
    result = refused(workspace, setup, args, named)
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error: ") and len(lines) <= 3, result.output  # no usage block
    assert [c for c in pulumi_cli.commands() if c not in ("version", "")] == []
