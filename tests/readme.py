"""The shown outputs of the README and the docs, made by running the commands for real.

    python tests/readme.py          # rewrite the generated blocks of README.md and docs/*.md
    python tests/readme.py --check  # exit 1 and show the difference when a page drifted

Each block sits between `<!-- generated: NAME -->` and `<!-- end generated -->`. Commands run
as processes in a temporary copy of the workspace with a fixed HOME and no Google settings,
so no machine path or user name leaks in; blocks that deploy run against the tests' stand-in
engine (tests/standin) and stand-in Google endpoints, and say so. What differs from run to run
is normalized: the temporary folder, local ports, durations, timestamps, revision suffixes and
the Pulumi version.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The README's clock: every session runs at NOW (STX_PULUMI_NOW), and every date its blocks show
# is relative to it, so the output never depends on the day it is made (test_readme runs it a
# year ahead too).
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# Every page that shows generated output: the README, then the docs (not their generated
# reference pages, which docs/gen.py makes whole)
PAGES = (README, *sorted((REPO / "docs").glob("*.md")))
SHOWN_HOME = "~"  # the temporary HOME, as shown
BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
sys.path.insert(0, str(Path(__file__).resolve().parent))


class Session:
    """A temporary workspace (a copy of this one) where commands run as a user types them."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.google: Any = None  # the stand-in Google endpoints, when there are some
        self.revisions: dict[str, dict[str, int]] = {}

    def run(self, command: str) -> str:
        """`command` as typed, then what it printed (`2>/dev/null`: stdout alone)."""
        if command.startswith("echo "):  # `echo TEXT >> FILE`: an edit of the course, shown
            text, _, file = command.removeprefix("echo ").partition(" >> ")
            with open(self.root / file, "a", encoding="utf-8") as out:
                out.write(text.strip("'") + "\n")
            return f"$ {command}\n"
        args = command.split()[1:]  # "stx-pulumi ..." as shown
        quiet = args[-1:] == ["2>/dev/null"]
        done = subprocess.run([sys.executable, "-m", "stx_pulumi", *args[:-1 if quiet else None]],
                              cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL if quiet else subprocess.STDOUT,
                              text=True, timeout=300, check=False)
        return f"$ {command}\n{self.normalize(done.stdout)}"

    def _revision(self, match: re.Match[str]) -> str:
        """Revisions numbered in the order they first appear, as Cloud Run numbers them."""
        known = self.revisions.setdefault(match.group(1), {})
        number = known.setdefault(match.group(2), len(known) + 1)
        return f"{match.group(1)}-{number:05d}"

    def normalize(self, text: str) -> str:
        text = text.replace(str(self.root.parent), SHOWN_HOME)
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:8080", text)
        text = re.sub(r"\(\d+\.\ds\)", "(…s)", text)
        text = re.sub(r"(?m) \d+\.\ds *$", " …s", text)  # a fleet's summary: each app's time
        text = re.sub(r"attempt\(s\), \d+s", "attempt(s), …s", text)
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "2026-12-01 07:30 UTC", text)
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "2026-12-01T07:30:00Z", text)
        text = re.sub(r"\b((?:hello-course|course)-[\w-]+)-([0-9a-f]{5})\b", self._revision,
                      text)
        text = re.sub(r"Pulumi CLI \d+\.\d+\.\d+", "Pulumi CLI 3.x", text)
        lines = _in_order([line.rstrip() for line in text.splitlines()])
        return "\n".join(lines).strip() + "\n"


# Resources in the order their dependencies allow: the engine runs independent ones in
# parallel, so the order they finish in varies; the README shows them in this one.
KINDS = ["StreamTeX app", "Artifact Registry repository", "Service account", "Secret access",
         "Image", "Cloud Run service", "Service account access", "Public access",
         "Scheduler rights", "Domain mapping", "Cloudflare provider", "Cloudflare DNS record",
         "Scheduler job"]
PROGRESS = re.compile(r"  (created|updated|deleted|replaced) +(\D+?) ([\w-]+) \(")


def _in_order(lines: list[str]) -> list[str]:
    """Each run of progress lines of one verb in KINDS order (reversed for deletions)."""
    def key(line: str) -> tuple[int, str]:
        found = PROGRESS.match(line)
        assert found is not None
        rank = KINDS.index(found.group(2)) if found.group(2) in KINDS else len(KINDS)
        return (-rank if found.group(1) == "deleted" else rank, found.group(3))

    out: list[str] = []
    for line in lines:
        verb = PROGRESS.match(line)
        start = len(out)
        while verb and start and (prev := PROGRESS.match(out[start - 1])) and (
                prev.group(1) == verb.group(1)):
            start -= 1
        out[start:] = sorted([*out[start:], line], key=key) if verb else [*out[start:], line]
    return out


@contextmanager
def session(standin: bool) -> Iterator[Session]:
    """A fresh workspace; with `standin`, the stand-in Pulumi CLI, docker and Google."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "home" / "course"  # the workspace, in the (temporary) home folder
        root.mkdir(parents=True)
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy(REPO / name, root / name)
        shutil.copytree(REPO / "stacks", root / "stacks")
        shutil.copytree(REPO / "examples", root / "examples")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(root.parent),
               "CLOUDSDK_CONFIG": str(root.parent / ".config" / "gcloud"), "NO_COLOR": "1",
               "COLUMNS": "100",
               "TERM": "dumb", "LANG": "C.UTF-8", "PYTHONPATH": str(REPO),
               "USER": "teacher", "LOGNAME": "teacher", "STX_PULUMI_NOW": iso(NOW)}
        if not standin:
            yield Session(root, env)
            return
        from fake_app import FakeApp
        from fake_google import FakeGoogle

        bin_dir = Path(tmp) / "bin"  # not under HOME: never shown
        bin_dir.mkdir()
        standin_cli = REPO / "tests" / "standin" / "pulumi_standin.py"
        (bin_dir / "pulumi").write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{standin_cli}" "$@"\n')
        (bin_dir / "pulumi").chmod(0o755)
        shutil.copy(REPO / "tests" / "standin" / "docker", bin_dir / "docker")
        with FakeGoogle() as google, FakeApp() as app:
            google.write_adc(Path(env["CLOUDSDK_CONFIG"]))
            env.update({"PATH": f"{bin_dir}:{env['PATH']}", "GOOGLE_CLOUD_PROJECT":
                        "my-course-project", "STANDIN_SERVICE_URL": app.url,
                        **google.environ()})
            made = Session(root, env)
            made.google = google
            yield made


def at(days: float = 0, hours: float = 0) -> datetime:
    """A time relative to the README's clock."""
    return NOW + timedelta(days=days, hours=hours)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_block(standin: bool, *commands: str | Callable[[], str],
              disabled: tuple[str, ...] = ()) -> Callable[[], str]:
    """A block made by running `commands` (text, or made when the block is: dates relative to
    the clock) in one fresh session, with `disabled` APIs in the stand-in Google project."""
    def make() -> str:
        with session(standin) as s:
            if s.google is not None:
                s.google.disabled = set(disabled)
                s.google.revisions = None  # every revision the stand-in made exists
            return "\n".join(s.run(command if isinstance(command, str) else command())
                             for command in commands)
    return make


def fleet() -> str:
    """A term of two courses (the example app and the books, deployed once before), at once;
    the status board; one course's logs from the stand-in Cloud Logging."""
    with session(True) as s:
        s.env["STX_PULUMI_NOW"] = iso(at(days=7, hours=20))  # the log lines are 30 min old
        s.google.revisions = None
        s.google.log_entries = [
            {"insertId": "a", "timestamp": iso(at(days=7, hours=19.5)), "severity": "INFO",
             "textPayload": "You can now view your Streamlit app in your browser.",
             "resource": {"labels": {"service_name": "hello-course-dev"}}},
            {"insertId": "b", "timestamp": iso(at(days=7, hours=19.5 + 1 / 60)),
             "severity": "ERROR",
             "textPayload": "ModuleNotFoundError: No module named 'blocks.quiz2'",
             "resource": {"labels": {"service_name": "hello-course-dev"}}}]
        s.run("stx-pulumi up course --path examples/course-books --book intro=manuals/intro "
              "--book advanced=manuals/advanced --no-verify")
        return "\n".join(s.run(command) for command in (
            "stx-pulumi up --all --max 20 -m exam-week 2>/dev/null", "stx-pulumi status",
            "stx-pulumi logs hello-course --since 2h"))


def team() -> str:
    """A team of two: Ana (who deployed the example before) sets up the team and CI; Ben, in
    a fresh clone of what Ana committed, runs the same setup and changes nothing."""
    from fake_github import FakeGitHub

    with session(True) as s, FakeGitHub() as github:
        s.google.revisions = None
        cloud = s.root.parent.parent / "cloud"  # the stand-in buckets and keys: not shown
        s.env.update({"STANDIN_GCS": str(cloud / "gcs"), "STANDIN_KMS": str(cloud / "kms"),
                      "STX_GITHUB_API": github.url})
        s.run("stx-pulumi up examples/hello-course --no-verify")
        subprocess.run(["git", "init", "-q"], cwd=s.root, check=True)  # Ana's repository
        setup = ("stx-pulumi team setup --project my-course-project --github my-school/courses "
                 "--member user:ben@example.com")
        shown = [s.run(command) for command in (
            f"{setup} --dry-run 2>/dev/null", f"{setup} 2>/dev/null", "stx-pulumi ci github")]
        ben = s.root.parent.parent / "ben" / "course"  # what git holds: no state, no passphrase
        ben.mkdir(parents=True)
        for name in ("Pulumi.yaml", "__main__.py", "team", "stacks", "examples", ".github"):
            source = s.root / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, ben / name)
        clone = Session(ben, {**s.env, "HOME": str(ben.parent), "USER": "ben"})
        shown += [clone.run("stx-pulumi team setup 2>/dev/null"),
                  clone.run("stx-pulumi status --no-check")]
        return "\n".join(shown)


def team_grants() -> str:
    """The grants table of stx_pulumi/model/team.py, as the README lists it."""
    from stx_pulumi.model import team as t

    rows = [f"| {who} | `{g.role}` | {g.scope}"
            + (" (granting roles/logging.logWriter only)" if g.condition else "")
            + f" | {g.why} |"
            for who, grants in (("deployer", t.DEPLOYER_GRANTS),
                                ("previewer", t.PREVIEWER_GRANTS), ("member", t.MEMBER_GRANTS))
            for g in grants]
    return "| account | role | scope | why |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def rehearse() -> str:
    """A rehearsal of the example app under a real `streamlit run` on loopback (no cloud),
    and, when the pages are written and Chromium is here, a screenshot of its HTML report."""
    from streamlit_servers import StreamlitRun

    with session(False) as s, StreamlitRun(s.root / "examples" / "hello-course",
                                           s.root.parent / "sessions.log") as server:
        shown = s.run(f"stx-pulumi rehearse --url {server.url} --users 20 --ramp 2s "
                      "--duration 10s --think 1s --report rehearsal.html 2>/dev/null")
        chromium = shutil.which("chromium")
        if SCREENSHOTS and chromium:
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--user-data-dir={s.root.parent / 'chromium'}", "--window-size=900,1150",
                 f"--screenshot={REPO / 'docs' / 'img' / 'rehearsal-report.png'}",
                 (s.root / "rehearsal.html").as_uri()],
                capture_output=True, timeout=120, check=True)
        return shown.replace(server.url, "http://127.0.0.1:8080")


SCREENSHOTS = False  # pictures are made when the pages are written (main, without --check)
# Blocks whose numbers are measured (latencies, counts of runs, CPU): the drift check compares
# their shape, the numbers aside.
MEASURED = {"rehearse": re.compile(r"\d+(\.\d+)?(s|%)|\d+ script runs")}


def shape(text: str) -> str:
    """`text` with the numbers of measured blocks blanked (what --check compares)."""
    def blank(match: re.Match[str]) -> str:
        rule = MEASURED.get(match.group(2))
        return match.group(0) if rule is None else rule.sub("#", match.group(0))

    return BLOCK.sub(blank, text)


BLOCKS: dict[str, Callable[[], str]] = {
    "help": run_block(False, "stx-pulumi --help"),
    "plan": run_block(False, "stx-pulumi plan examples/hello-course --max 100"),
    "cost": run_block(False, "stx-pulumi cost examples/hello-course"),
    "doctor": run_block(True, "stx-pulumi doctor examples/hello-course"),
    "up": run_block(True, "stx-pulumi up examples/hello-course --max 100 -m lab-1"),
    "deploy": run_block(True, "stx-pulumi up examples/hello-course --max 100 -m lab-1",
                        "stx-pulumi up hello-course --max 13 --no-verify",
                        "stx-pulumi preview hello-course --max 20 --diff",
                        "stx-pulumi stacks",
                        "stx-pulumi destroy hello-course --yes"),
    "books": run_block(True, "stx-pulumi up course --path examples/course-books "
                       "--book intro=manuals/intro --book advanced=manuals/advanced "
                       "--max advanced=50", "stx-pulumi up course --unset books.advanced "
                       "--yes --no-verify"),
    "events": run_block(True, lambda: "stx-pulumi event add examples/hello-course --start "
                        f"{at(days=8):%Y-%m-%d}T08:00 --end {at(days=8):%Y-%m-%d}T10:00 --tz "
                        "Europe/Paris --users 1000 --up", "stx-pulumi event list hello-course"),
    "setup": run_block(True, "stx-pulumi setup --yes", "stx-pulumi setup",
                       disabled=("iam.googleapis.com",)),
    "releases": run_block(True, "stx-pulumi up examples/hello-course -m lab-1",
                          "stx-pulumi up hello-course --max 20 -m exam-scaling",
                          "echo 'st.write(\"quiz 2\")' >> examples/hello-course/book.py",
                          "stx-pulumi up hello-course -m quiz-2",
                          "stx-pulumi rollback hello-course --yes -m broken-quiz",
                          "stx-pulumi history hello-course"),
    "fleet": fleet,
    "team": team,
    "team-grants": team_grants,
    "rehearse": rehearse,
    "watched": run_block(False, "stx-pulumi plan examples/hello-course --env prod --alert-email "
                         "ana@school.edu --budget 80 --billing-account 012345-6789AB-CDEF01"),
}


TABLES = ("team-grants",)  # markdown tables, not shown output


def render(text: str, only: str | None = None) -> str:
    """README text with every generated block (or the block `only`) made anew."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if only is not None and name != only:
            return match.group(0)
        body = BLOCKS[name]()
        fenced = body if name in TABLES else f"```text\n{body}```\n"
        return match.group(1) + fenced + match.group(4)

    return BLOCK.sub(replace, text)


def page_of(name: str) -> Path:
    """The page that shows block `name`."""
    return next(page for page in PAGES if f"<!-- generated: {name} -->" in page.read_text(
        encoding="utf-8"))


def main(argv: list[str]) -> int:
    global SCREENSHOTS
    SCREENSHOTS = "--check" not in argv
    drifted = 0
    for page in PAGES:
        current = page.read_text(encoding="utf-8")
        fresh = render(current)
        if "--check" not in argv:
            page.write_text(fresh, encoding="utf-8")
        elif shape(fresh) != shape(current):
            drifted = 1
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), fresh.splitlines(True),
                str(page.relative_to(REPO)), "regenerated"))
    return drifted


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
