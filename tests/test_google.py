"""The one Google client and the contract its fakes hold it to (issue #22).

- the client refreshes its token before it expires (a `logs --follow` outlives a token);
- its errors carry the HTTP status, mapped once;
- every request the Google fake receives is checked against Google's discovery documents: an
  unknown field, a wrong type, an unknown query parameter, a body where the method takes none,
  an update mask naming no field are refused, naming the method and the field.
"""

from __future__ import annotations

import json
import os
import time

import discovery
import httpx
import pytest
from fake_google import FakeGoogle

from stx_pulumi.cloud import google
from stx_pulumi.errors import GoogleError

SERVICE = "v2/projects/course-project-1/locations/europe-west1/services/hello-course-dev"


def test_the_client_refreshes_a_token_before_it_expires(google: FakeGoogle) -> None:
    google.token_life = 2  # Google's are an hour; google-auth refreshes within 3m45s of expiry
    client = google_client()
    assert client.missing_apis("course-project-1", ("run.googleapis.com",)) == []
    first = client.credentials.token
    time.sleep(2.2)  # the first token is dead now
    dead = httpx.get(f"{google.url}/serviceusage/v1/projects/course-project-1/"
                     "services:batchGet", headers={"Authorization": f"Bearer {first}"})
    assert dead.status_code == 401
    assert client.missing_apis("course-project-1", ("run.googleapis.com",)) == []
    assert client.credentials.token != first


def test_errors_carry_the_http_status(google: FakeGoogle) -> None:
    client = google_client()
    assert client.scheduler_job("course-project-1", "europe-west1", "nope") is None  # a 404
    google.tokens.clear()  # every token revoked server-side
    with pytest.raises(GoogleError) as err:
        client.request("GET", client.url("run", f"{SERVICE}:getIamPolicy"))
    assert err.value.status == 401 and err.value.exit_code == 1


def test_a_request_off_googles_contract_is_refused_naming_the_method_and_field(
        google: FakeGoogle) -> None:
    client = google_client()
    with pytest.raises(GoogleError) as err:
        client.call("POST", "run", f"{SERVICE}:setIamPolicy",
                    body={"policy": {"bindings": []}, "updateMaskk": "bindings"})
    assert err.value.status == 400
    (violation,) = google.violations
    assert violation.startswith("run.projects.locations.services.setIamPolicy: request: "
                                "unknown field 'updateMaskk'")
    assert violation in str(err.value)  # Google's 400 says why
    google.violations.clear()  # shown: the fixture would fail this test otherwise


@pytest.mark.parametrize(("api", "verb", "path", "query", "body", "named"), [
    ("run", "PATCH", SERVICE, [("updateMask", "scaling.minInstances")], {},
     "'scaling.minInstances' names no field"),
    ("run", "PATCH", SERVICE, [], {"scaling": {"minInstanceCount": "three"}},
     "request.scaling.minInstanceCount: expected int32"),
    ("run", "PATCH", SERVICE, [("updatemask", "scaling")], {}, "unknown query parameter"),
    ("run", "GET", "v2/projects/p/services/s", [], None, "no method for GET"),
    ("iam", "POST", "v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com:getIamPolicy",
     [], {"options": {"requestedPolicyVersion": 3}}, "takes no request body"),
    ("cloudscheduler", "GET", "v1/projects/p/locations/l/jobs/j",
     [("options.requestedPolicyVersion", "3")], None, "unknown query parameter"),
    ("run", "POST", f"{SERVICE}:setIamPolicy", [],
     {"policy": {"bindings": [{"role": "r", "members": "user:a@b.c"}]}}, "expected a list"),
    ("storage", "POST", "upload/storage/v1/b/bucket/o", [("name", "x")], None,
     "uploadType=media"),
    ("cloudbuild", "POST", "v1/projects/p/locations/l/builds", [],
     {"options": {"logging": "SOMETIMES"}}, "'SOMETIMES' is not one of"),
], ids=["update-mask", "type", "query", "path", "iam-body", "query-2", "list", "media",
        "enum"])
def test_the_contract_refuses(api: str, verb: str, path: str, query: list[tuple[str, str]],
                              body: dict | None, named: str) -> None:
    with pytest.raises(discovery.Violation, match=named.replace("(", r"\(")):
        discovery.check(api, verb, "/" + path, query,
                        b"" if body is None else json.dumps(body).encode(), "application/json")


def test_every_api_the_client_calls_has_its_contract_here() -> None:
    """The endpoint table and the documents the fakes check against name the same APIs (the
    registry is the Docker registry API, Cloud Quotas has no published document here)."""
    assert set(google.ENDPOINTS) - {"registry"} - set(discovery.NOT_PUBLISHED) <= set(
        discovery.DOCUMENTS)


def google_client() -> google.Google:
    return google.connect(os.environ)
