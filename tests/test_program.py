"""The StreamtexApp program under Pulumi's mocks: what a cloud would receive.

Every test is `@pulumi.runtime.test` and returns the Output it asserts on, so its assertions run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from stx_pulumi.model.build import build_spec
from stx_pulumi.model.spec import AppSpec
from stx_pulumi.source import SourceFacts

PROJECT = "course-project-1"
ZONE = "0123456789abcdef0123456789abcdef"
SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}  # wire form


class Recorder(pulumi.runtime.Mocks):
    """Records every registration; returns plausible computed outputs."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == "gcp:cloudrunv2/service:Service":
            state["uri"] = f"https://{args.inputs['name']}-abc123-ew.a.run.app"
            state["latestCreatedRevision"] = state["latestReadyRevision"] = "rev-00002"
            state["trafficStatuses"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
                                         "percent": 100, "revision": ""}]
        if args.typ == "docker:index/image:Image":
            state["repoDigest"] = args.inputs["imageName"].split(":")[0] + "@sha256:" + "ab" * 32
        if args.typ == "gcp:serviceaccount/account:Account":
            state["email"] = f"{args.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
            state["name"] = f"projects/{PROJECT}/serviceAccounts/{state['email']}"
        if args.typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            state["name"] = ("projects/123456789012/locations/global/workloadIdentityPools/"
                             + args.inputs["workloadIdentityPoolId"])
        if args.typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            state["name"] = ("projects/123456789012/locations/global/workloadIdentityPools/"
                             f"{args.inputs['workloadIdentityPoolId']}/providers/"
                             + args.inputs["workloadIdentityPoolProviderId"])
        if args.typ == "gcp:monitoring/notificationChannel:NotificationChannel":
            state["name"] = f"projects/{PROJECT}/notificationChannels/{args.name}"
        if args.typ == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
            state["uptimeCheckId"] = f"{args.name}-check"
        if args.typ == "gcp:cloudrun/domainMapping:DomainMapping":
            state["statuses"] = [{"resourceRecords": [
                {"name": "course", "type": "CNAME", "rrdata": "ghs.googlehosted.com."}]}]
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "gcp:organizations/getProject:getProject":  # the budget's filter
            return {"number": "123456789012", "projectId": args.args["projectId"]}
        assert args.token == "gcp:organizations/getClientConfig:getClientConfig"
        return {"accessToken": "ya29.google-access-token", "project": PROJECT}

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> dict[str, Any]:
        found = self.of_type(typ)
        assert len(found) == 1, f"{len(found)} resources of type {typ}"
        return found[0].inputs


def make_spec(env: str = "dev", serve_mode: str | None = None, **settings: Any) -> AppSpec:
    source = SourceFacts(path=Path("/apps/hello-course"), exists=True, has_dockerfile=True,
                         exposed_ports=frozenset({80, 8501}), has_nginx=True,
                         dockerfile_serve_mode=serve_mode, image_tag="sha-abc1234")
    return build_spec({"gcp:project": PROJECT, **settings}, app="hello-course", env=env,
                      source=source)


def build(spec: AppSpec, token: pulumi.Input[str] | None = None, build: Any = None) -> Any:
    from stx_pulumi.program import StreamtexApp

    return StreamtexApp(spec.service_name, spec, build, cloudflare_token=token)


@pulumi.runtime.test
def test_repository_is_docker_with_cleanup_policy(mocks: Recorder) -> Any:
    app = build(make_spec())

    def check(_: Any) -> None:
        repo = mocks.one("gcp:artifactregistry/repository:Repository")
        assert repo["format"] == "DOCKER"
        assert repo["repositoryId"] == "hello-course-dev"
        assert repo["location"] == "europe-west1"
        assert repo["cleanupPolicyDryRun"] is False
        policies = {p["id"]: p for p in repo["cleanupPolicies"]}
        assert policies["keep-recent"]["action"] == "KEEP"
        assert policies["keep-recent"]["mostRecentVersions"]["keepCount"] == 5
        assert policies["delete-older"]["action"] == "DELETE"
        assert policies["delete-older"]["condition"]["tagState"] == "ANY"

    return app.repository.urn.apply(check)


@pulumi.runtime.test
def test_image_built_for_amd64_pushed_with_google_token(mocks: Recorder) -> Any:
    app = build(make_spec())

    def check(name: str) -> None:
        assert name == ("europe-west1-docker.pkg.dev/course-project-1/hello-course-dev/"
                        "hello-course:sha-abc1234")
        image = mocks.one("docker:index/image:Image")
        assert image["build"]["platform"] == "linux/amd64"
        assert image["build"]["context"] == "/apps/hello-course"
        assert image["build"]["dockerfile"] == "/apps/hello-course/Dockerfile"
        assert image["build"]["args"] == {"SOURCE_COMMIT": "sha-abc1234"}
        registry = image["registry"]
        assert {k: v for k, v in registry.items() if k != "value"} == SECRET
        assert registry["value"]["username"] == "oauth2accesstoken"
        assert registry["value"]["password"] == "ya29.google-access-token"
        assert registry["value"]["server"] == "europe-west1-docker.pkg.dev"

    return app.image.image_name.apply(check)


@pulumi.runtime.test
def test_runtime_service_account_has_no_project_roles(mocks: Recorder) -> Any:
    app = build(make_spec())

    def check(args: list[str]) -> None:
        email = args[0]
        assert email == f"hello-course-dev-run@{PROJECT}.iam.gserviceaccount.com"
        account = mocks.one("gcp:serviceaccount/account:Account")
        assert account["accountId"] == "hello-course-dev-run"
        assert not [r for r in mocks.resources if r.typ.startswith("gcp:projects/")]
        service = mocks.one("gcp:cloudrunv2/service:Service")
        assert service["template"]["serviceAccount"] == email

    return pulumi.Output.all(app.service_account.email, app.service.urn).apply(check)


@pulumi.runtime.test
def test_service_defaults(mocks: Recorder) -> Any:
    app = build(make_spec())

    def check(args: list[Any]) -> None:
        digest, uri = args
        s = mocks.one("gcp:cloudrunv2/service:Service")
        assert s["name"] == "hello-course-dev" and s["location"] == "europe-west1"
        assert s["project"] == PROJECT
        assert s["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 10}
        assert "scaling" not in s["template"], "scaling must be service-level"
        assert s["deletionProtection"] is False
        assert s["labels"] == {"managed-by": "streamtex", "stx-app": "hello-course",
                               "stx-env": "dev"}
        assert s["traffics"] == [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
                                  "percent": 100}]
        t = s["template"]
        assert t["maxInstanceRequestConcurrency"] == 80
        assert t["timeout"] == "3600s"
        assert t["sessionAffinity"] is True
        c = t["containers"][0]
        assert c["image"] == digest and "@sha256:" in digest
        assert c["ports"] == {"containerPort": 80}
        assert c["resources"] == {"limits": {"cpu": "1", "memory": "512Mi"}, "cpuIdle": True,
                                  "startupCpuBoost": True}
        probe = c["startupProbe"]
        assert probe["tcpSocket"] == {"port": 80}
        assert probe["periodSeconds"] * probe["failureThreshold"] == 240
        assert probe["initialDelaySeconds"] == 0
        assert probe["timeoutSeconds"] <= probe["periodSeconds"]
        envs = {e["name"]: e["value"] for e in c["envs"]}
        # a mode decided from the image's EXPOSE and Nginx is not sent to it
        assert envs == {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
                        "STREAMLIT_SERVER_RUN_ON_SAVE": "false"}
        assert uri == "https://hello-course-dev-abc123-ew.a.run.app"

    return pulumi.Output.all(app.image.repo_digest, app.service.uri).apply(check)


@pulumi.runtime.test
def test_service_takes_every_setting(mocks: Recorder) -> Any:
    spec = make_spec(**{
        "gcp:region": "us-central1", "stx:minInstances": 2, "stx:maxInstances": 100,
        "stx:cpu": 2, "stx:memory": "2Gi", "stx:concurrency": 250, "stx:timeout": 900,
        "stx:folder": "courses/hello", "stx:envVars": {"GREETING": "hi"},
    })
    app = build(spec)

    def check(_: Any) -> None:
        s = mocks.one("gcp:cloudrunv2/service:Service")
        assert s["location"] == "us-central1"
        assert s["scaling"] == {"minInstanceCount": 2, "maxInstanceCount": 100}
        c = s["template"]["containers"][0]
        assert c["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
        assert s["template"]["maxInstanceRequestConcurrency"] == 250
        assert s["template"]["timeout"] == "900s"
        envs = {e["name"]: e["value"] for e in c["envs"]}
        assert envs["FOLDER"] == "courses/hello" and envs["GREETING"] == "hi"

    return app.service.urn.apply(check)


@pytest.mark.parametrize(("mode", "port"), [("dual", 80), ("static-only", 80),
                                             ("streamlit-only", 8501)])
@pulumi.runtime.test
def test_container_port_follows_serve_mode(mocks: Recorder, mode: str, port: int) -> Any:
    app = build(make_spec(serve_mode=mode))

    def check(_: Any) -> None:
        c = mocks.one("gcp:cloudrunv2/service:Service")["template"]["containers"][0]
        assert c["ports"]["containerPort"] == port
        assert c["startupProbe"]["tcpSocket"]["port"] == port
        assert {"name": "STX_SERVE_MODE", "value": mode} in c["envs"]  # the image's choice

    return app.service.urn.apply(check)


@pulumi.runtime.test
def test_a_mode_the_user_chose_is_sent_with_its_port(mocks: Recorder) -> Any:
    app = build(make_spec(**{"stx:serveMode": "streamlit-only"}))

    def check(outputs: list[Any]) -> None:
        c = mocks.one("gcp:cloudrunv2/service:Service")["template"]["containers"][0]
        assert {"name": "STX_SERVE_MODE", "value": "streamlit-only"} in c["envs"]
        assert c["ports"]["containerPort"] == 8501 == outputs[1]
        assert outputs[0] == "streamlit-only"

    return pulumi.Output.all(app.outputs["serve_mode"], app.outputs["port"],
                             app.service.urn).apply(check)


@pulumi.runtime.test
def test_prod_is_deletion_protected(mocks: Recorder) -> Any:
    app = build(make_spec(env="prod"))

    def check(_: Any) -> None:
        s = mocks.one("gcp:cloudrunv2/service:Service")
        assert s["deletionProtection"] is True
        assert s["name"] == "hello-course-prod"
        assert mocks.one("gcp:artifactregistry/repository:Repository")["repositoryId"] == (
            "hello-course-prod")

    return app.service.urn.apply(check)


@pulumi.runtime.test
def test_public_service_lets_all_users_invoke(mocks: Recorder) -> Any:
    app = build(make_spec())

    def check(_: Any) -> None:
        member = mocks.one("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
        assert member == {"name": "hello-course-dev", "location": "europe-west1",
                          "project": PROJECT, "role": "roles/run.invoker", "member": "allUsers"}

    return app.public_access.urn.apply(check)


@pulumi.runtime.test
def test_private_service_has_no_public_access(mocks: Recorder) -> Any:
    app = build(make_spec(**{"stx:public": "false"}))

    def check(_: Any) -> None:
        assert app.public_access is None
        assert mocks.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember") == []

    return app.service.urn.apply(check)


@pulumi.runtime.test
def test_secret_env_reads_secret_manager_with_access_on_that_secret_only(
        mocks: Recorder) -> Any:
    app = build(make_spec(**{"stx:secretEnv": {"STX_AUTH_LIVE": "course-auth:3",
                                               "API_KEY": "api-key"}}))

    def check(args: list[str]) -> None:
        email = args[0]
        c = mocks.one("gcp:cloudrunv2/service:Service")["template"]["containers"][0]
        sources = {e["name"]: e["valueSource"]["secretKeyRef"] for e in c["envs"]
                   if "valueSource" in e}
        assert sources == {"STX_AUTH_LIVE": {"secret": "course-auth", "version": "3"},
                           "API_KEY": {"secret": "api-key", "version": "latest"}}
        members = mocks.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
        assert sorted(m.inputs["secretId"] for m in members) == ["api-key", "course-auth"]
        for m in members:
            assert m.inputs["role"] == "roles/secretmanager.secretAccessor"
            assert m.inputs["member"] == f"serviceAccount:{email}"

    return pulumi.Output.all(app.service_account.email, app.service.urn).apply(check)


@pulumi.runtime.test
def test_domain_with_cloudflare_creates_unproxied_cname_with_secret_token(
        mocks: Recorder) -> Any:
    spec = make_spec(**{"stx:domain": "course.example.org", "stx:cloudflareZoneId": ZONE,
                        "cloudflare:apiToken": "[secret]"})
    app = build(spec, pulumi.Output.secret("cf-token-value"))

    def check(_: Any) -> None:
        mapping = mocks.one("gcp:cloudrun/domainMapping:DomainMapping")
        assert mapping["name"] == "course.example.org"
        assert mapping["location"] == "europe-west1"
        assert mapping["metadata"]["namespace"] == PROJECT
        assert mapping["spec"] == {"routeName": "hello-course-dev",
                                   "certificateMode": "AUTOMATIC"}
        provider = mocks.one("pulumi:providers:cloudflare")
        assert provider["apiToken"] == {**SECRET, "value": "cf-token-value"}
        record = mocks.one("cloudflare:index/dnsRecord:DnsRecord")
        assert record == {"zoneId": ZONE, "name": "course.example.org", "type": "CNAME",
                          "content": "ghs.googlehosted.com", "proxied": False, "ttl": 1,
                          "comment": record["comment"]}
        dns = [r for r in mocks.resources if r.typ == "cloudflare:index/dnsRecord:DnsRecord"]
        assert dns[0].provider and "hello-course-dev-cloudflare" in dns[0].provider
        assert "dns_records" not in app.outputs
        assert app.outputs["custom_url"] == "https://course.example.org"

    return app.dns_record.urn.apply(check)


@pulumi.runtime.test
def test_domain_without_cloudflare_exports_records_to_create(mocks: Recorder) -> Any:
    app = build(make_spec(**{"stx:domain": "course.example.org"}))

    def check(records: list[dict]) -> None:
        assert records == [{"name": "course", "type": "CNAME",
                            "rrdata": "ghs.googlehosted.com."}]
        assert mocks.of_type("cloudflare:index/dnsRecord:DnsRecord") == []
        assert mocks.of_type("pulumi:providers:cloudflare") == []

    return app.outputs["dns_records"].apply(check)


@pulumi.runtime.test
def test_apex_domain_with_cloudflare_leaves_records_to_the_user(mocks: Recorder) -> Any:
    spec = make_spec(**{"stx:domain": "example.org", "stx:cloudflareZoneId": ZONE,
                        "cloudflare:apiToken": "[secret]"})
    assert any("apex" in w for w in spec.warnings)
    app = build(spec, pulumi.Output.secret("cf-token-value"))

    def check(records: list[dict]) -> None:
        assert records and mocks.of_type("cloudflare:index/dnsRecord:DnsRecord") == []

    return app.outputs["dns_records"].apply(check)


@pulumi.runtime.test
def test_stack_outputs_are_exported(mocks: Recorder) -> Any:
    from stx_pulumi.program import deploy

    app = deploy(make_spec(**{"stx:maxInstances": 13}))

    def check(values: dict[str, Any]) -> None:
        assert values == {
            "url": "https://hello-course-dev-abc123-ew.a.run.app",
            "custom_url": None,
            "service": "hello-course-dev",
            "image": ("europe-west1-docker.pkg.dev/course-project-1/hello-course-dev/"
                      "hello-course@sha256:" + "ab" * 32),
            "image_tag": "sha-abc1234",
            "region": "europe-west1",
            "project": PROJECT,
            "min_instances": 0,
            "max_instances": 13,
            "revision": "rev-00002",
            "ready_revision": "rev-00002",
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "revision": "",
                         "percent": 100}],
            "serve_mode": "dual",
            "port": 80,
            "public": True,
            "protected": False,
        }

    return pulumi.Output.all(**app.outputs).apply(check)


@pulumi.runtime.test
@pytest.mark.parametrize(("maxes", "ceilings"), [((10, 100), [None, None]),
                                                 ((150, 200), [150, 200])])
def test_the_revision_ceiling_is_the_peak_above_the_default(
        mocks: Recorder, maxes: tuple[int, ...], ceilings: list[int | None]) -> Any:
    """Cloud Run caps a revision at 100 instances unless told otherwise: up to 100 the template
    sets nothing (scaling changes stay service-level); above, the ceiling is the peak itself,
    never 1000 (Cloud Run refuses a ceiling the region's quota cannot give)."""
    apps = [build(make_spec(**{"stx:maxInstances": m})) for m in maxes]  # mocks allow it

    def check(_: Any) -> None:
        services = mocks.of_type("gcp:cloudrunv2/service:Service")
        found = {s.inputs["scaling"]["maxInstanceCount"]: (
            s.inputs["template"].get("scaling") or {}).get("maxInstanceCount")
            for s in services}
        assert [found[m] for m in maxes] == ceilings

    return pulumi.Output.all(*[a.service.urn for a in apps]).apply(check)


@pulumi.runtime.test
def test_image_builds_from_the_folder_relative_to_the_workspace(mocks: Recorder) -> Any:
    from dataclasses import replace

    app = build(replace(make_spec(), context="courses/hello-course"))

    def check(_: Any) -> None:
        build_args = mocks.one("docker:index/image:Image")["build"]
        assert build_args["context"] == "courses/hello-course"
        assert build_args["dockerfile"] == "courses/hello-course/Dockerfile"

    return app.image.urn.apply(check)
