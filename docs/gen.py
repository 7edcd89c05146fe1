"""The reference pages, made from the code: every command's help (from Typer), the settings
(from the registry, `stx_pulumi.model.settings`) and the exit codes (`errors.EXIT_CODES`).

    python docs/gen.py          # rewrite docs/reference/*.md
    python docs/gen.py --check  # exit 1 and show the difference when a page drifted

tests/test_docs.py runs the check, so a new option, setting or exit code that is not in the
docs fails the suite.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
REFERENCE = DOCS / "reference"
WIDTH = 100  # the terminal the help is shown in
HEADER = "<!-- made by docs/gen.py from the code: edit the code, then run it -->\n\n"


def _commands(group: Any, prefix: str) -> Iterator[str]:
    """`stx-pulumi event add`..., in the order --help lists them (typer's own click)."""
    context = type(group).context_class(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        yield f"{prefix} {name}"
        if hasattr(command, "list_commands"):
            yield from _commands(command, f"{prefix} {name}")


def _help(args: list[str]) -> str:
    from typer.testing import CliRunner

    from stx_pulumi.cli import app

    runner = CliRunner()
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": str(WIDTH), "NO_COLOR": "1",
                                                        "TERM": "dumb"}, color=False)
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.output.splitlines()).strip() + "\n"


def commands_page() -> str:
    import typer

    from stx_pulumi.cli import app

    out = [HEADER, "# Commands\n\n", "Every command and its options, as `--help` prints them. "
           "APP is an app name or the app's folder; the deployment options of `plan`, "
           "`preview`, `up` and `cost` are the [settings](settings.md).\n"]
    out.append(f"\n```text\n$ stx-pulumi --help\n{_help([])}```\n")
    for name in _commands(typer.main.get_command(app), "stx-pulumi"):
        args = name.split()[1:]
        out.append(f"\n## {name}\n\n```text\n$ {name} --help\n{_help(args)}```\n")
    return "".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def settings_page() -> str:
    from stx_pulumi.model.settings import SETTINGS

    rows = []
    for s in SETTINGS:
        option = f"`{s.option}`" if s.option else ""
        if s.option and s.metavar:
            option = f"`{s.option} {s.metavar}`"
        rows.append(f"| {option} | `{s.key}`{' (secret)' if s.secret else ''} | "
                    f"{_cell(s.shown)} | {_cell(s.help)} | {_cell(s.allowed)} |")
    per_book = ", ".join(f"`{s.book}`" for s in SETTINGS if s.book)
    return (HEADER + "# Settings\n\n"
            "Each stack config key, the option that sets it (for `plan`, `preview`, `up` and "
            "`cost`), its default, and what it allows. An option overrides the stack config "
            "for one run and is written into it by a successful `up`. Precedence: command "
            "line > stack file > the workspace's `Pulumi.yaml` > the environment > StreamTeX's "
            "`.stx-deploy.env` > the workspace default (`setup`) > gcloud's configuration > "
            "the default below.\n\n"
            "| option | config key | default | what | allowed |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\n"
            f"A book (`stx:books.NAME`) may set {per_book} for itself: `--max intro=100`.\n")


def exit_codes_page() -> str:
    from stx_pulumi.errors import EXIT_CODES

    rows = "\n".join(f"| {code} | {_cell(meaning)} |" for code, meaning in EXIT_CODES.items())
    return (HEADER + "# Exit codes\n\nEvery command exits with one of these; a fleet "
            "(several apps) with the most urgent its apps had (4, then 1, 5, 3, 2).\n\n"
            f"| code | meaning |\n|---|---|\n{rows}\n")


PAGES: dict[str, Callable[[], str]] = {
    "commands.md": commands_page,
    "settings.md": settings_page,
    "exit-codes.md": exit_codes_page,
}


def drift() -> str:
    """The unified difference between the pages and what the code makes now ("" if none)."""
    diff = []
    for name, make in PAGES.items():
        file = REFERENCE / name
        current = file.read_text(encoding="utf-8") if file.is_file() else ""
        diff += difflib.unified_diff(current.splitlines(True), make().splitlines(True),
                                     f"docs/reference/{name}", "made now")
    return "".join(diff)


def main(argv: list[str]) -> int:
    os.environ.setdefault("COLUMNS", str(WIDTH))
    if "--check" in argv:
        found = drift()
        sys.stdout.write(found)
        return 1 if found else 0
    REFERENCE.mkdir(exist_ok=True)
    for name, make in PAGES.items():
        (REFERENCE / name).write_text(make(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
