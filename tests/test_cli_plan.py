"""`stx-pulumi plan` as a user types it, and Pulumi.yaml's main against the same stack file."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from conftest import REPO
from typer.testing import CliRunner

from stx_pulumi.cli import app

runner = CliRunner()
ZONE = "0123456789abcdef0123456789abcdef"
SERVICE = "gcp:cloudrunv2/service:Service"


def plan_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_type(data: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in data["resources"] if r["type"] == type_]


def test_plan_json_shape(workspace: Path) -> None:
    data = plan_json("examples/hello-course", "--max", "100")
    assert (data["stack"], data["app"], data["env"]) == ("hello-course.dev", "hello-course", "dev")
    types = [r["type"] for r in data["resources"]]
    assert types.count("stx:index:StreamtexApp") == 1
    assert "pulumi:pulumi:Stack" not in types
    assert sorted(types) == sorted([
        "stx:index:StreamtexApp", "gcp:artifactregistry/repository:Repository",
        "docker:index/image:Image", "gcp:serviceaccount/account:Account", SERVICE,
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"])
    (service,) = by_type(data, SERVICE)
    assert service["name"] == "hello-course-dev"
    assert service["parent"] == "stx:index:StreamtexApp"
    assert service["inputs"]["location"] == "europe-west1"
    max_count = service["inputs"]["scaling"]["maxInstanceCount"]
    assert max_count == 100 and isinstance(max_count, int)
    assert service["inputs"]["template"]["containers"][0]["image"] is None  # unknown offline
    (image,) = by_type(data, "docker:index/image:Image")
    assert image["inputs"]["registry"] == "[secret]"
    assert data["outputs"]["url"] is None
    assert data["outputs"]["max_instances"] == 100
    assert data["outputs"]["image_tag"].startswith("src-")
    assert data["warnings"] == []  # GOOGLE_CLOUD_PROJECT is set by the fixture
    assert data["project"] == "course-project-1"


def test_plan_by_name_by_path_and_in_the_app_folder_agree(workspace: Path,
                                                          monkeypatch: Any) -> None:
    by_path = plan_json("examples/hello-course")
    by_name = plan_json("hello-course")  # path from stacks/Pulumi.hello-course.dev.yaml
    explicit = plan_json("hello-course", "--path", "examples/hello-course")
    monkeypatch.chdir(workspace / "examples" / "hello-course")
    here = plan_json()
    assert by_path == by_name == explicit == here


def test_plan_human_output_names_every_resource(workspace: Path) -> None:
    names = [r["name"] for r in plan_json("hello-course")["resources"]]
    result = runner.invoke(app, ["plan", "hello-course"])
    assert result.exit_code == 0
    for name in names[1:]:  # the component is the tree's root: its stack is named instead
        assert name in result.output
    assert "hello-course.dev" in result.output
    assert "instances 0–10" in result.output
    assert "nothing in the cloud was read or changed" in result.output


def test_placeholder_project_is_labelled(workspace: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    monkeypatch.setenv("PATH", "/nonexistent")  # no gcloud either
    data = plan_json("hello-course")
    assert data["project"] == "your-gcp-project"
    assert any("placeholder" in w for w in data["warnings"])


_SPAWNED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _SPAWNED is not None and event in ("subprocess.Popen", "os.posix_spawn", "os.exec",
                                          "os.system", "os.fork"):
        _SPAWNED.append(f"{event} {args[:2]}")


sys.addaudithook(_audit)  # audit hooks stay for the process: it records only when asked


def test_project_comes_from_gcloud_config_without_any_subprocess(
        workspace: Path, monkeypatch: Any, tmp_path: Path) -> None:
    """gcloud's project is read from its configuration files (the active configuration, as
    gcloud resolves it); `plan` starts no process at all, gcloud on PATH or not."""
    global _SPAWNED
    config = Path(os.environ["CLOUDSDK_CONFIG"])
    (config / "configurations").mkdir(parents=True, exist_ok=True)
    (config / "active_config").write_text("teaching")
    (config / "configurations" / "config_teaching").write_text(
        "[core]\naccount = ada@example.org\nproject = gcloud-proj-1\n")
    (config / "configurations" / "config_default").write_text("[core]\nproject = other-proj\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gcloud-calls"
    (bin_dir / "gcloud").write_text(f'#!/bin/sh\necho "$*" >> {log}\necho gcloud-proj-2\n')
    (bin_dir / "gcloud").chmod(0o755)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    _SPAWNED = []
    try:
        assert plan_json("hello-course")["project"] == "gcloud-proj-1"
        spawned = list(_SPAWNED)
    finally:
        _SPAWNED = None
    assert spawned == [] and not log.exists()
    monkeypatch.setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "default")
    assert plan_json("hello-course")["project"] == "other-proj"
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "env-proj-1")
    assert plan_json("hello-course")["project"] == "env-proj-1"
    assert plan_json("hello-course", "--project", "option-proj-1")["project"] == "option-proj-1"


def test_plan_with_cloudflare_domain_keeps_the_token_secret(workspace: Path) -> None:
    token = "cf-very-secret-token-123"
    result = runner.invoke(app, ["plan", "hello-course", "--json", "--domain",
                                 "course.example.org", "--cloudflare-zone", ZONE],
                           env={"CLOUDFLARE_API_TOKEN": token})
    assert result.exit_code == 0, result.output
    assert token not in result.output
    data = json.loads(result.stdout)
    (provider,) = by_type(data, "pulumi:providers:cloudflare")
    assert provider["inputs"]["apiToken"] == "[secret]"
    (record,) = by_type(data, "cloudflare:index/dnsRecord:DnsRecord")
    assert record["inputs"]["proxied"] is False and record["inputs"]["ttl"] == 1
    assert record["parent"] == "stx:index:StreamtexApp"


def test_plan_reads_a_secure_token_from_the_stack_file_without_decrypting(
        workspace: Path) -> None:
    stack = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    config = yaml.safe_load(stack.read_text())
    config["config"].update({"stx:domain": "course.example.org", "stx:cloudflareZoneId": ZONE,
                             "cloudflare:apiToken": {"secure": "v1:c2VjcmV0:Y2lwaGVy"}})
    stack.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["plan", "hello-course"])
    assert result.exit_code == 0, result.output
    assert "API token [secret]" in result.output
    assert "Y2lwaGVy" not in result.output


def test_plan_writes_nothing(workspace: Path) -> None:
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    plan_json("hello-course", "--max", "50", "--domain", "course.example.org")
    after = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    assert after == before


def _python(code: str, cwd: Path) -> str:
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "course-project-1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_help_imports_no_pulumi(workspace: Path) -> None:
    out = _python(
        "import sys\nfrom stx_pulumi.cli import main\n"
        "for argv in (['--help'], ['team', 'setup', '--help'], ['ci', 'github', '--help'],\n"
        "             ['up', '--help']):\n"
        "    sys.argv = ['stx-pulumi', *argv]\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print('LOADED', [m for m in sys.modules if m.split('.')[0].startswith('pulumi')])",
        workspace)
    assert out.splitlines()[-1] == "LOADED []"


def test_plan_without_cloudflare_never_imports_pulumi_cloudflare(workspace: Path) -> None:
    out = _python(
        "import sys\nfrom stx_pulumi.cli import main\n"
        "sys.argv=['stx-pulumi','plan','hello-course','--json','--domain','c.example.org']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('CLOUDFLARE', 'pulumi_cloudflare' in sys.modules)", workspace)
    assert out.splitlines()[-1] == "CLOUDFLARE False"


def test_every_command_and_option_has_help() -> None:
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert commands
    for name, cmd in commands.items():
        assert cmd.help, f"command {name} has no help"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{name} {param.opts} has no help"


class _Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[tuple[str, str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.registered.append((args.typ, args.name, args.inputs))
        state = dict(args.inputs)
        if args.typ == "gcp:serviceaccount/account:Account":
            state["email"] = f"{args.inputs['accountId']}@course-project-1.iam.gserviceaccount.com"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {"accessToken": "offline-plan"}


BOOKS_STACK = {"config": {
    "stx:path": "examples/course-books", "gcp:project": "course-project-1",
    "stx:maxInstances": "20",
    "stx:books": {"intro": {"folder": "manuals/intro", "maxInstances": "100"},
                  "advanced": {"folder": "manuals/advanced"}}}}


@pytest.mark.parametrize("app", ["hello-course", "course"])
@pytest.mark.parametrize("how", ["root set, cwd at main's folder", "no root, cwd below"])
def test_pulumi_yaml_main_registers_what_plan_shows(workspace: Path, how: str, app: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`pulumi preview --stack hello-course.dev` runs the same program as `plan`, the way the
    CLI runs `main`: working directory at main's folder and the root directory set; without a
    root directory (inline programs, mocks) from any folder of the workspace. `course` is a
    stack of books, whose map the CLI hands the program as JSON."""
    from pulumi.runtime import settings

    from stx_pulumi.engine.plan import wire_value

    if app == "course":
        shutil.copytree(REPO / "examples" / "course-books",
                        workspace / "examples" / "course-books")
        (workspace / "stacks" / "Pulumi.course.dev.yaml").write_text(yaml.safe_dump(BOOKS_STACK))
    planned = plan_json(app)
    project = yaml.safe_load((workspace / "Pulumi.yaml").read_text())
    stack_file = yaml.safe_load(
        (workspace / "stacks" / f"Pulumi.{app}.dev.yaml").read_text())
    recorder = _Recorder()
    pulumi.runtime.set_mocks(recorder, project="stx-pulumi", stack=f"{app}.dev",
                             preview=True)
    pulumi.runtime.set_all_config({k: json.dumps(v) if isinstance(v, dict) else str(v)
                                   for k, v in stack_file["config"].items()})
    main = workspace / project["main"]
    if how.startswith("root set"):
        settings.SETTINGS.root_directory = str(workspace)
        monkeypatch.chdir(main.parent)
    else:
        settings.SETTINGS.root_directory = None
        monkeypatch.chdir(workspace / "stacks")

    @pulumi.runtime.test
    def run() -> Any:
        runpy.run_path(str(main), run_name="__main__")
        return pulumi.Output.from_input(1)

    try:
        run()
    finally:
        pulumi.runtime.set_all_config({})
        settings.SETTINGS.root_directory = None
    got = [(t, n, wire_value(i)) for t, n, i in recorder.registered]
    want = [(r["type"], r["name"], r["inputs"]) for r in planned["resources"]]
    assert sorted(got, key=str) == sorted(want, key=str)
    image = next(i for t, _, i in got if t == "docker:index/image:Image")
    assert image["build"]["context"] == stack_file["config"]["stx:path"]  # no machine path
    services = [n for t, n, _ in got if t == "gcp:cloudrunv2/service:Service"]
    assert len(services) == (2 if app == "course" else 1)
