"""A repository of books as one stack (issue #10): one image, one registry, one runtime
account, one Cloud Run service per book with its own FOLDER, URL, scaling and domain.

The spec and the program are checked offline (mocks); the examples/course-books repository is
deployed end to end through the stand-in engine, each book's service answering at its own
local server, so verification really reaches both.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from conftest import REPO, PulumiStandIn
from fake_app import FakeApp
from helpers import resources, stx, stx_json
from test_program import PROJECT, ZONE, Recorder

from stx_pulumi.model.build import build_spec
from stx_pulumi.model.spec import AppSpec
from stx_pulumi.source import inspect_source

BOOKS = REPO / "examples" / "course-books"
SERVICE = "gcp:cloudrunv2/service:Service"
IMAGE = "docker:index/image:Image"
TWO_BOOKS = ("--book", "intro=manuals/intro", "--book", "advanced=manuals/advanced")


def books_spec(**settings: Any) -> AppSpec:
    books = {"intro": {"folder": "manuals/intro"}, "advanced": {"folder": "manuals/advanced"}}
    for key, value in settings.pop("per_book", {}).items():
        book, _, name = key.partition(".")
        books[book][name] = value
    folders = [b["folder"] for b in books.values()]
    return build_spec({"gcp:project": PROJECT, "stx:books": books, **settings}, app="course",
                      env="dev", source=inspect_source(BOOKS, folders))


# -- the spec ---------------------------------------------------------------------------------

def test_every_book_gets_the_apps_settings_unless_it_sets_its_own() -> None:
    spec = books_spec(**{"stx:maxInstances": 20, "stx:cpu": 2, "stx:memory": "1Gi",
                         "per_book": {"advanced.maxInstances": "100", "intro.minInstances": 1}})
    services = {s.book: s for s in spec.services}
    assert [s.name for s in spec.services] == ["course-advanced-dev", "course-intro-dev"]
    assert services["advanced"].max_instances == 100 and services["intro"].max_instances == 20
    assert services["intro"].min_instances == 1 and services["advanced"].min_instances == 0
    assert {s.cpu for s in spec.services} == {2} and {s.memory for s in spec.services} == {"1Gi"}
    assert services["intro"].folder == "manuals/intro"
    assert (spec.serve_mode, spec.port) == ("streamlit-only", 8501)  # the image's, for all


def test_a_single_folder_app_keeps_its_one_service_and_names() -> None:
    spec = build_spec({"gcp:project": PROJECT, "stx:folder": "manuals/intro"}, app="course",
                      env="dev", source=inspect_source(BOOKS, ["manuals/intro"]))
    (service,) = spec.services
    assert (service.name, service.book, service.folder) == ("course-dev", None, "manuals/intro")
    assert spec.books == ()


def test_cost_is_per_book_and_idle_counts_every_books_min_instances() -> None:
    from stx_pulumi.model.cost import estimate
    from stx_pulumi.model.prices import Prices

    spec = books_spec(per_book={"intro.minInstances": 1, "advanced.maxInstances": 13})
    data = estimate(spec, Prices(), users=1000, hours=2)
    assert set(data["books"]) == {"intro", "advanced"}
    assert data["books"]["advanced"]["warnings"] == []
    (warning,) = data["books"]["intro"]["warnings"]
    assert "--max intro=13" in warning
    one_book = books_spec(per_book={"intro.minInstances": 1})
    both = books_spec(per_book={"intro.minInstances": 1, "advanced.minInstances": 1})
    idle_one = estimate(one_book, Prices())["idle_monthly"]["min_instances_usd"]
    assert estimate(both, Prices())["idle_monthly"]["min_instances_usd"] == pytest.approx(
        2 * idle_one, abs=0.01)


# -- the program under mocks ------------------------------------------------------------------

@pytest.fixture
def mocks() -> Recorder:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="stx-pulumi", stack="course.dev", preview=False)
    return recorder


@pulumi.runtime.test
def test_books_share_one_image_and_account_each_with_its_service_access_and_domain(
        mocks: Recorder) -> Any:
    from stx_pulumi.program import StreamtexApp

    spec = books_spec(**{"stx:cloudflareZoneId": ZONE, "cloudflare:apiToken": "[secret]",
                         "per_book": {"intro.domain": "intro.example.org",
                                      "advanced.public": False}})
    app = StreamtexApp(spec.service_name, spec, cloudflare_token=pulumi.Output.secret("token"))

    def check(args: list[Any]) -> dict[str, Any]:
        outputs = args[0]
        assert len(mocks.of_type(IMAGE)) == 1
        assert len(mocks.of_type("gcp:serviceaccount/account:Account")) == 1
        assert len(mocks.of_type("gcp:artifactregistry/repository:Repository")) == 1
        services = {r.name: r.inputs for r in mocks.of_type(SERVICE)}
        assert set(services) == {"course-intro-dev", "course-advanced-dev"}
        for name, folder in (("course-intro-dev", "manuals/intro"),
                             ("course-advanced-dev", "manuals/advanced")):
            container = services[name]["template"]["containers"][0]
            assert {"name": "FOLDER", "value": folder} in container["envs"]
            assert container["ports"]["containerPort"] == 8501
            assert services[name]["labels"]["stx-book"] == name.split("-")[1]
        members = [r.name for r in mocks.of_type(
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")]
        assert members == ["course-intro-dev-public"]  # advanced is private
        (mapping,) = mocks.of_type("gcp:cloudrun/domainMapping:DomainMapping")
        assert mapping.name == "course-intro-dev-domain"
        assert mapping.inputs["spec"]["routeName"] == "course-intro-dev"
        (record,) = mocks.of_type("cloudflare:index/dnsRecord:DnsRecord")
        assert record.inputs["name"] == "intro.example.org"
        assert "url" not in outputs
        assert outputs["books"]["intro"]["custom_url"] == "https://intro.example.org"
        assert outputs["books"]["advanced"]["public"] is False
        assert outputs["books"]["advanced"]["url"].startswith("https://course-advanced-dev-")
        return outputs

    made = [r.urn for s in app.served for r in (s.service, s.public_access, s.domain_mapping,
                                                s.dns_record) if r is not None]
    return pulumi.Output.all(pulumi.Output.all(**app.outputs), *made).apply(check)


# -- end to end through the stand-in engine ---------------------------------------------------

@pytest.fixture
def book_apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeApp]]:
    """Each book's service answers at its own local server."""
    with FakeApp() as intro, FakeApp() as advanced:
        monkeypatch.setenv("STANDIN_SERVICE_URLS", json.dumps(
            {"course-intro-dev": intro.url, "course-advanced-dev": advanced.url}))
        yield {"intro": intro, "advanced": advanced}


@pytest.fixture
def books_deployed(workspace: Path, pulumi_cli: PulumiStandIn,
                   book_apps: dict[str, FakeApp]) -> Path:
    shutil.copytree(BOOKS, workspace / "examples" / "course-books")
    result = stx("up", "course", "--path", "examples/course-books", *TWO_BOOKS,
                 "--max", "advanced=50", "--yes")
    assert result.exit_code == 0, result.output
    return workspace


def test_books_deploy_as_one_stack_with_one_image_and_a_service_each(
        books_deployed: Path, book_apps: dict[str, FakeApp]) -> None:
    res = resources(books_deployed, "course.dev")
    assert [n for n, r in res.items() if r["type"] == IMAGE] == ["course-dev-image"]
    services = {n: r["inputs"] for n, r in res.items() if r["type"] == SERVICE}
    assert set(services) == {"course-intro-dev", "course-advanced-dev"}
    digest = res["course-dev-image"]["outputs"]["repoDigest"]
    for book in ("intro", "advanced"):
        container = services[f"course-{book}-dev"]["template"]["containers"][0]
        assert {"name": "FOLDER", "value": f"manuals/{book}"} in container["envs"]
        assert container["ports"]["containerPort"] == 8501 and container["image"] == digest
        assert not any(e["name"] == "STX_SERVE_MODE" for e in container["envs"])
        # both verified, each at its own server
        assert "/_stcore/health" in [p for p, _ in book_apps[book].requests]
    assert services["course-advanced-dev"]["scaling"]["maxInstanceCount"] == 50
    assert services["course-intro-dev"]["scaling"]["maxInstanceCount"] == 10
    assert {"course-intro-dev-public", "course-advanced-dev-public"} <= set(res)
    config = yaml.safe_load((books_deployed / "stacks/Pulumi.course.dev.yaml").read_text())
    assert config["config"]["stx:books"] == {
        "intro": {"folder": "manuals/intro"},
        "advanced": {"folder": "manuals/advanced", "maxInstances": "50"}}
    outputs = stx_json("outputs", "course")
    assert outputs["books"]["intro"]["url"] == book_apps["intro"].url
    assert outputs["books"]["advanced"]["service"] == "course-advanced-dev"
    (entry,) = stx_json("stacks")["stacks"]
    assert f"intro {book_apps['intro'].url}" in entry["url"]


def test_a_second_up_changes_nothing_and_one_books_scaling_updates_only_it(
        books_deployed: Path) -> None:
    data = stx_json("up", "course", "--yes")
    assert data["changes"]["same"] == 8 and data["changes"]["update"] == 0
    assert data["verify"]["result"] == "passed"
    assert set(data["verify"]["books"]) == {"intro", "advanced"}
    data = stx_json("up", "course", "--max", "intro=30", "--yes")
    assert data["changes"]["update"] == 1
    res = resources(books_deployed, "course.dev")
    assert res["course-intro-dev"]["inputs"]["scaling"]["maxInstanceCount"] == 30
    assert res["course-advanced-dev"]["inputs"]["scaling"]["maxInstanceCount"] == 50


def test_verify_checks_every_book_and_names_the_one_that_fails(
        books_deployed: Path, book_apps: dict[str, FakeApp]) -> None:
    assert stx("verify", "course").exit_code == 0
    book_apps["advanced"].mode = "503"
    result = stx("verify", "course", "--wait-timeout", "1", "--poll-interval", "1")
    assert result.exit_code == 5
    assert "verify course.dev book intro: passed" in result.output
    assert "verification of course.dev book advanced failed: health" in result.output
    assert "stx-pulumi logs course --env dev (service course-advanced-dev" in result.output


def test_removing_a_book_deletes_only_its_service_and_destroy_removes_everything(
        books_deployed: Path) -> None:
    before = resources(books_deployed, "course.dev")
    refused = stx("up", "course", "--unset", "books.advanced")
    assert refused.exit_code == 2
    assert "deletes the service(s) course-advanced-dev" in refused.output
    assert resources(books_deployed, "course.dev") == before
    data = stx_json("up", "course", "--unset", "books.advanced", "--yes")
    assert data["changes"]["delete"] == 2  # the service and its public access
    assert data["changes"]["replace"] == 0 and data["changes"]["update"] == 0
    after = resources(books_deployed, "course.dev")
    assert set(before) - set(after) == {"course-advanced-dev", "course-advanced-dev-public"}
    assert after["course-intro-dev"]["outputs"] == before["course-intro-dev"]["outputs"]
    config = yaml.safe_load((books_deployed / "stacks/Pulumi.course.dev.yaml").read_text())
    assert set(config["config"]["stx:books"]) == {"intro"}

    data = stx_json("destroy", "course", "--yes")
    assert resources(books_deployed, "course.dev") == {}


def test_plan_and_cost_show_every_book(workspace: Path) -> None:
    shutil.copytree(BOOKS, workspace / "examples" / "course-books")
    plan = stx_json("plan", "course", "--path", "examples/course-books", *TWO_BOOKS)
    services = [r["name"] for r in plan["resources"] if r["type"] == SERVICE]
    assert services == ["course-advanced-dev", "course-intro-dev"]
    assert set(plan["outputs"]["books"]) == {"intro", "advanced"}
    assert set(plan["cost"]["books"]) == {"intro", "advanced"}
    text = stx("cost", "course", "--path", "examples/course-books", *TWO_BOOKS).output
    assert "Cost of course.dev book intro" in text and "Cost of course.dev book advanced" in text


def test_a_book_folder_as_path_names_the_root_and_the_folder_to_use(
        workspace: Path) -> None:
    """--path at a book of a repository of books (no Dockerfile there, one at the root):
    the error gives the exact options, never "run `stx deploy docker` there"."""
    shutil.copytree(BOOKS, workspace / "examples" / "course-books")
    result = stx("plan", "course", "--path", "examples/course-books/manuals/intro")
    assert result.exit_code == 2
    root = (workspace / "examples" / "course-books").resolve()
    assert f"--path {root} --folder manuals/intro" in result.output
    assert "stx deploy docker" not in result.output
