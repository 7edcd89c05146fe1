"""The live acceptance suite (issue #22): what only real Google proves, in one command, and the
same tests against this machine's stand-ins, so they are never dead code.

    STX_LIVE_PROJECT=my-scratch-project pytest -m live

Modelled on terraform-provider-google's acceptance tests (`TF_ACC=1`): a live test runs only
when STX_LIVE_PROJECT names a scratch project and this machine has Google credentials, the
Pulumi CLI and Docker (or STX_LIVE_BUILDER=cloud); otherwise it is skipped with one line saying
what is missing. STX_LIVE_REGION picks the region (default europe-west1). Each test deploys an
app named `stx-live-<run id>` (its label `stx-app`) and destroys it at the end, also when the
test fails; `team setup` leaves its state bucket and KMS key, as it always does (retained by
design: a key ring cannot be deleted in Google Cloud).

A test does the same for both targets; a `Target` answers what differs: running a command,
what Google holds of a service, letting a scheduled minute pass (real minutes live; locally the
jobs fire through the workflow's own source, `fake_workflows`), an Admin API call with
`validateOnly=true`, and what is left after `destroy`.
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fake_workflows
import pytest
from conftest import EXAMPLE, REPO
from croniter import croniter
from helpers import resources, state, stx

from stx_pulumi.cloud import google
from stx_pulumi.errors import GoogleError

ORIGINAL_ENV = dict(os.environ)  # before the tests' clean environment: the maintainer's own
SCALING = "scaling.minInstanceCount,scaling.maxInstanceCount"


def live_ready() -> str | None:
    """Why the live target cannot run here, in one line (None: it can)."""
    env = ORIGINAL_ENV
    if not env.get("STX_LIVE_PROJECT"):
        return "live: set STX_LIVE_PROJECT to a scratch Google Cloud project to run it"
    if not shutil.which("pulumi", path=env.get("PATH")):
        return "live: no Pulumi CLI on PATH"
    if env.get("STX_LIVE_BUILDER") != "cloud" and not shutil.which("docker", path=env.get(
            "PATH")):
        return "live: no Docker on PATH (or set STX_LIVE_BUILDER=cloud)"
    try:
        google.connect(env)
    except GoogleError as err:
        return f"live: no usable Google credentials ({err.message})"
    return None


class Target:
    """Where a test runs: `local` (stand-ins) or `live` (a scratch project)."""

    name = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.app = f"stx-live-{secrets.token_hex(3)}"
        self.deployed: set[str] = set()

    def run(self, *args: str) -> tuple[int, str]:
        raise NotImplementedError

    def json(self, *args: str) -> dict[str, Any]:
        code, out = self.run(*args, "--json")
        assert code == 0, out
        return json.loads(out[out.index("{"):])

    def up(self, *args: str, env: str = "dev") -> dict[str, Any]:
        self.deployed.add(env)
        return self.json("up", self.app, "--path", "examples/hello-course", "--env", env,
                         "--yes", *args)

    def service(self, env: str = "dev") -> dict[str, Any]:
        """Google's view of the app's service: its scaling and newest revision."""
        raise NotImplementedError

    def policies(self, env: str) -> list[str]:
        """The display names of the app's alert policies in that env, as Monitoring has them."""
        raise NotImplementedError

    def until(self, when: datetime) -> None:
        """Let time pass up to `when` (scheduled jobs fire)."""
        raise NotImplementedError

    def validate_patch(self, env: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        raise NotImplementedError

    def published(self, image: str) -> None:
        """`image` (a digest) is in its registry, as the build that made it left it."""

    def prepare_team(self) -> None:
        """What `team setup` needs besides the project."""

    def cleanup(self) -> None:
        for env in sorted(self.deployed):
            self.run("destroy", self.app, "--env", env, "--yes", "--unprotect", "--remove")


class Local(Target):
    """The stand-in engine and the fakes of Google (held to Google's discovery documents)."""

    name = "local"

    def __init__(self, root: Path, fake: Any, registry: Any,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(root)
        self.fake = fake
        self.registry = registry
        self.monkeypatch = monkeypatch
        self.fired: set[tuple[str, datetime]] = set()

    def published(self, image: str) -> None:
        self.registry.push(*image.split("@"))

    def prepare_team(self) -> None:
        """The stand-in buckets and KMS keys (the stand-in backend finds them once made)."""
        self.monkeypatch.setenv("STANDIN_GCS", str(self.root.parent / "gcs"))
        self.monkeypatch.setenv("STANDIN_KMS", str(self.root.parent / "kms"))

    def run(self, *args: str) -> tuple[int, str]:
        result = stx(*args)
        return result.exit_code, result.stdout if "--json" in args else result.output

    def _live_file(self) -> Path:
        return self.root / ".pulumi-state/.pulumi/.standin-services.json"

    def service(self, env: str = "dev") -> dict[str, Any]:
        name = f"{self.app}-{env}"
        scaling = json.loads(self._live_file().read_text())[name]
        revision = resources(self.root, f"{self.app}.{env}")[name]["outputs"][
            "latestCreatedRevision"]
        return {"scaling": scaling, "latestCreatedRevision": revision}

    def policies(self, env: str) -> list[str]:
        return sorted(r["inputs"]["displayName"] for r in resources(
            self.root, f"{self.app}.{env}").values()
            if r["type"] == "gcp:monitoring/alertPolicy:AlertPolicy")

    def until(self, when: datetime) -> None:
        """Cloud Scheduler, locally: every job of the stack whose cron falls before `when`
        starts the workflow (its own source, run by `fake_workflows`) at that minute, and
        the workflow's PATCH lands on the stand-in cloud's live scaling."""
        import base64

        made = resources(self.root, f"{self.app}.dev")
        source = next(r["inputs"]["sourceContents"] for r in made.values()
                      if r["type"] == "gcp:workflows/workflow:Workflow")
        for job in (r["inputs"] for r in made.values()
                    if r["type"] == "gcp:cloudscheduler/job:Job"):
            argument = json.loads(json.loads(base64.b64decode(job["httpTarget"]["body"]))[
                "argument"])
            start = datetime.now(UTC) - timedelta(minutes=10)
            fires = croniter(job["schedule"], start.astimezone(google_zone(job["timeZone"])))
            while (fire := fires.get_next(datetime).astimezone(UTC)) <= when:
                if (job["name"], fire) in self.fired:
                    continue
                self.fired.add((job["name"], fire))
                for call in fake_workflows.run(source, argument, fire.timestamp()).calls:
                    live = json.loads(self._live_file().read_text())
                    live[call["url"].rsplit("/", 1)[1]] = call["body"]["scaling"]
                    self._live_file().write_text(json.dumps(live))

    def validate_patch(self, env: str, body: dict[str, Any]) -> dict[str, Any]:
        client = google.connect(os.environ)
        return client.call("PATCH", "run", f"v2/projects/course-project-1/locations/"
                           f"europe-west1/services/{self.app}-{env}",
                           [("updateMask", SCALING), ("validateOnly", "true")], body)

    def leftovers(self) -> list[str]:
        live = json.loads(self._live_file().read_text()) if self._live_file().is_file() else {}
        left = [name for name in live if name.startswith(self.app)]
        for env in self.deployed:
            left += [r["name"] for r in state(self.root, f"{self.app}.{env}")["resources"]]
        return left


class Live(Target):
    """A scratch Google Cloud project, the real Pulumi CLI and Docker or Cloud Build."""

    name = "live"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.project = ORIGINAL_ENV["STX_LIVE_PROJECT"]
        self.region = ORIGINAL_ENV.get("STX_LIVE_REGION", "europe-west1")
        self.env = {**ORIGINAL_ENV, "GOOGLE_CLOUD_PROJECT": self.project,
                    "STX_PULUMI_HOME": str(root / "home"), "NO_COLOR": "1",
                    "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(16)}
        self.client = google.connect(self.env)

    def run(self, *args: str) -> tuple[int, str]:
        extra = ["--region", self.region] if args[:1] in (("up",), ("plan",)) else []
        if args[:1] == ("up",) and ORIGINAL_ENV.get("STX_LIVE_BUILDER") == "cloud":
            extra += ["--builder", "cloud"]
        done = subprocess.run([sys.executable, "-m", "stx_pulumi", *args, *extra],
                              cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=1800, check=False)
        return done.returncode, done.stdout if "--json" in args else (
            done.stdout + done.stderr)

    def _service_path(self, env: str) -> str:
        return f"v2/projects/{self.project}/locations/{self.region}/services/{self.app}-{env}"

    def service(self, env: str = "dev") -> dict[str, Any]:
        return self.client.call("GET", "run", self._service_path(env))

    def policies(self, env: str) -> list[str]:
        found = self.client.call("GET", "monitoring", f"v3/projects/{self.project}/"
                                 "alertPolicies", [("filter", f'user_labels."stx-app"="'
                                                   f'{self.app}" AND user_labels."stx-env"='
                                                   f'"{env}"')])
        return sorted(p["displayName"] for p in found.get("alertPolicies") or [])

    def until(self, when: datetime) -> None:
        time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))

    def validate_patch(self, env: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.call("PATCH", "run", self._service_path(env),
                                [("updateMask", SCALING), ("validateOnly", "true")], body)

    def leftovers(self) -> list[str]:
        """What Google still holds of the app, by its names and its `stx-app` label."""
        where = f"projects/{self.project}/locations/{self.region}"
        found = []
        for api, path, key in (("run", f"v2/{where}/services", "services"),
                               ("artifactregistry", f"v1/{where}/repositories", "repositories"),
                               ("cloudscheduler", f"v1/{where}/jobs", "jobs"),
                               ("workflows", f"v1/{where}/workflows", "workflows"),
                               ("iam", f"v1/projects/{self.project}/serviceAccounts",
                                "accounts")):
            for item in self.client.call("GET", api, path).get(key) or []:
                name = str(item.get("name") or item.get("email") or "")
                labels = item.get("labels") or {}
                if self.app in name.rsplit("/", 1)[-1] or labels.get("stx-app") == self.app:
                    found.append(name)
        return found


def google_zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@pytest.fixture(params=["local", pytest.param("live", marks=pytest.mark.live)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "live":
        reason = live_ready()
        if reason:
            pytest.skip(reason)
        root = tmp_path / "ws"
        shutil.copytree(REPO / "stacks", root / "stacks")
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy(REPO / name, root / name)
        shutil.copytree(EXAMPLE, root / "examples" / "hello-course")
        made: Target = Live(root)
    else:
        from fake_registry import FakeRegistry

        workspace = request.getfixturevalue("workspace")
        request.getfixturevalue("pulumi_cli")
        monkeypatch = request.getfixturevalue("monkeypatch")
        registry = FakeRegistry()
        monkeypatch.setenv("STX_REGISTRY_ENDPOINT", registry.endpoint)
        request.addfinalizer(registry.server.shutdown)
        made = Local(workspace, request.getfixturevalue("google"), registry, monkeypatch)
    try:
        yield made
    finally:
        made.cleanup()


pytestmark = pytest.mark.e2e


def test_a_scale_change_makes_no_revision(target: Target) -> None:
    target.up("--max", "3")
    first = target.service()
    assert first["scaling"]["maxInstanceCount"] == 3
    target.up("--max", "4", "--no-verify")
    second = target.service()
    assert second["scaling"]["maxInstanceCount"] == 4
    assert second["latestCreatedRevision"] == first["latestCreatedRevision"]


def test_an_event_window_scales_up_and_back(target: Target) -> None:
    """A window three minutes ahead: its warm job scales the service up at its minute, its end
    job back at the end, nobody at the keyboard."""
    target.up("--no-verify")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now + timedelta(minutes=4), now + timedelta(minutes=7)
    code, out = target.run("event", "add", target.app, "--env", "dev", "--start",
                           f"{start:%Y-%m-%d %H:%M}", "--end", f"{end:%Y-%m-%d %H:%M}", "--tz",
                           "UTC", "--min", "2", "--warm", "1m", "--up", "--yes")
    assert code == 0, out
    assert wait_for(target, start - timedelta(minutes=1), min_instances=2)
    assert wait_for(target, end, min_instances=0)


def wait_for(target: Target, when: datetime, min_instances: int) -> bool:
    """The service's min instances as expected within two minutes after `when`."""
    target.until(when + timedelta(seconds=20))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if target.service()["scaling"].get("minInstanceCount", 0) == min_instances:
            return True
        time.sleep(10)
        target.until(datetime.now(UTC))
    return False


def test_rollback_and_promote_build_nothing(target: Target) -> None:
    first = target.up("-m", "v1")
    book = target.root / "examples" / "hello-course" / "book.py"
    book.write_text(book.read_text() + "\nst.write('v2')\n")
    target.up("-m", "v2")
    code, out = target.run("rollback", target.app, "--env", "dev", "--yes")
    assert code == 0, out
    assert "building" not in out and "Cloud Build" not in out
    assert target.json("outputs", target.app, "--env", "dev")["image"] == first["outputs"][
        "image"]
    target.up("-m", "staging", env="staging")
    target.run("up", target.app, "--env", "dev", "--unpin", "--yes")  # v2 serves dev again
    serving = target.json("outputs", target.app, "--env", "dev")["image"]
    target.published(serving)
    code, out = target.run("promote", target.app, "--from", "dev", "--to", "staging", "--yes")
    assert code == 0, out
    assert "building" not in out
    promoted = target.json("outputs", target.app, "--env", "staging")["image"]
    assert promoted.rsplit("@", 1)[1] == serving.rsplit("@", 1)[1]


def test_the_admin_api_accepts_every_call_the_workflow_makes(target: Target) -> None:
    """`validateOnly=true`: Google checks the PATCH the event workflow sends (warm and back),
    changing nothing."""
    target.up("--no-verify")
    before = target.service()
    for low, high in ((2, 10), (0, 10)):
        answer = target.validate_patch("dev", {"scaling": {"minInstanceCount": low,
                                                           "maxInstanceCount": high}})
        assert answer.get("name")  # an operation
    assert target.service()["scaling"] == before["scaling"]


@pytest.mark.parametrize("target", [pytest.param("live", marks=pytest.mark.live)],
                         indirect=True)
def test_a_cloud_build(target: Target) -> None:
    """Google's builder image, the build account's rights and the push: live only (locally,
    test_cloud_build.py drives the same code against fakes of Storage and Cloud Build)."""
    data = target.up("--builder", "cloud")
    assert "@sha256:" in data["outputs"]["image"]


def test_destroy_leaves_nothing(target: Target) -> None:
    target.up("--no-verify")
    code, out = target.run("destroy", target.app, "--env", "dev", "--yes")
    assert code == 0, out
    assert target.leftovers() == []


def test_team_setup_makes_the_state_bucket_and_key_the_workspace_then_uses(
        target: Target) -> None:
    target.prepare_team()
    project = getattr(target, "project", "course-project-1")
    code, out = target.run("team", "setup", "--project", project)
    assert code == 0, out
    checks = {c["name"]: c for c in target.json("doctor")["checks"]}
    assert checks["backend"]["status"] == "pass", checks["backend"]
    assert checks["secrets key"]["status"] == "pass", checks["secrets key"]



def test_without_a_project_the_live_suite_skips_each_test_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STX_LIVE_PROJECT"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "live", "-n", "0", "-q",
                           "-rs", "-p", "no:cacheprovider"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    live = [f for name, f in globals().items() if name.startswith("test_")
            and "target" in inspect.signature(f).parameters]  # each has a live variant
    assert len(skipped) == len(live) and all(line.endswith(
        "live: set STX_LIVE_PROJECT to a scratch Google Cloud project to run it")
        for line in skipped)


def test_a_rehearsal_has_real_sessions_and_reads_the_instances(
        target: Target, request: pytest.FixtureRequest) -> None:
    """20 students on the deployed example (through its Nginx, websocket included); Cloud
    Monitoring's instance count once its ingest delay has passed, and what it cost. Locally
    the stand-in service answers Streamlit's protocol and the fake Monitoring one minute."""
    if isinstance(target, Local):
        from streamlit_servers import Misbehaving

        server = Misbehaving("ok").__enter__()
        request.addfinalizer(lambda: server.__exit__(None, None, None))
        target.monkeypatch.setenv("STANDIN_SERVICE_URL", server.url)
        target.fake.instance_points = [(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), 1)]
    target.up("--max", "3", "--no-verify")  # the rehearsal is the check
    report = target.json("rehearse", target.app, "--env", "dev", "--users", "20", "--ramp",
                         "5s", "--duration", "40s" if target.name == "live" else "8s",
                         "--think", "2s")
    assert report["served"] == 20 and report["errors"] == {}, report
    assert report["instances"]["peak"] >= 1 and report["cost_usd"] > 0


def test_a_protected_env_is_watched_and_its_image_was_scanned(target: Target) -> None:
    """prod: the alert policies of each kind exist as Monitoring has them, the dashboard's URL
    is an output, and the release kept its image's scan (the gate waited for it; the risk is
    accepted so that a base image's finding of the day does not fail the suite)."""
    data = target.up("--no-verify", "--alert-email", "stx-live@example.com", "--accept-risk",
                     "the live suite's scratch deploy", env="prod")
    kinds = ("fails its uptime check", "5xx over 5 minutes", "students turned away",
             "does not become ready")
    names = target.policies("prod")
    assert all(any(kind in n for n in names) for kind in kinds), names
    assert data["outputs"]["dashboard_url"].startswith("https://console.cloud.google.com/")
    history = target.json("history", target.app, "--env", "prod")["releases"]
    assert history[0]["scan"], history[0]  # judged: clean, or the findings, as Google said
