"""Running stx-pulumi as a user types it, in-process (CliRunner) or as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from stx_pulumi.cli import app

runner = CliRunner()


def stx(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """`stx-pulumi ARGS` in-process; output holds stdout and stderr, stdout alone is apart."""
    return runner.invoke(app, list(args), env=env, input=input)


def stx_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = stx(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stx_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """`stx-pulumi ARGS` as its own process (for concurrency)."""
    return subprocess.Popen([sys.executable, "-m", "stx_pulumi", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def state(workspace: Path, stack: str) -> dict[str, Any]:
    """The stand-in backend's state of a stack."""
    file = workspace / ".pulumi-state" / ".pulumi" / "stacks" / "stx-pulumi" / f"{stack}.json"
    return json.loads(file.read_text())


def resources(workspace: Path, stack: str) -> dict[str, dict[str, Any]]:
    """The stack's cloud resources (not the component) by logical name."""
    return {r["name"]: r for r in state(workspace, stack)["resources"] if r["custom"]}


def refused(workspace: Path, setup: Callable[[Path], None], args: tuple[str, ...],
            named: str) -> Result:
    """`stx-pulumi ARGS` after `setup(workspace)`: exit 2 naming `named`, and not one file of
    the workspace or the home created, changed or removed. The result, for more checks."""
    setup(workspace)
    home = Path(os.environ["STX_PULUMI_HOME"])
    before = snapshot(workspace, home)
    result = stx(*args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert snapshot(workspace, home) == before
    return result


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file below `roots` (workspace, state, home) by path → SHA-256 of its bytes, so
    a test can assert that nothing at all was created, changed or removed."""
    import hashlib

    out = {}
    for root in roots:
        if root.exists():
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                out[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


def validate_github(root: Path) -> None:
    """Every workflow under `root/.github/workflows` and its dependabot.yml, checked by real
    tools offline: GitHub's schemas (vendored in check-jsonschema) and zizmor (no finding of
    any severity, auditor persona)."""
    tools = Path(sys.executable).parent
    github = root / ".github"
    for schema, files in (("vendor.github-workflows", sorted((github / "workflows").iterdir())),
                          ("vendor.dependabot", [github / "dependabot.yml"])):
        done = subprocess.run([str(tools / "check-jsonschema"), "--builtin-schema", schema,
                               *map(str, files)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([str(tools / "zizmor"), "--offline", "--persona", "auditor",
                           "--format", "plain", str(root)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and "No findings" in done.stdout, done.stdout


class Said:
    """A Reporter (ops.report) that keeps what a use case said, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append(message)


def on_terminal(args: list[str], cwd: Path | None = None,
                answers: dict[bytes, bytes] | None = None,
                env: dict[str, str] | None = None, timeout: float = 60
                ) -> tuple[int, str]:
    """`stx-pulumi ARGS` on a real terminal (a pty): each prompt in `answers` (the text it
    shows → what is typed) answered once; (exit code, everything it showed)."""
    import os
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "stx_pulumi", *args], cwd=cwd,
                               stdin=follower, stdout=follower, stderr=follower,
                               env={**os.environ, "COLUMNS": "160", **(env or {})})
    os.close(follower)
    seen, pending = b"", dict(answers or {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        for prompt in [p for p in pending if p in seen]:
            os.write(leader, pending.pop(prompt))
        if process.poll() is not None and not ready:
            break
    code = process.wait(timeout=30)
    os.close(leader)
    return code, seen.decode(errors="replace")
