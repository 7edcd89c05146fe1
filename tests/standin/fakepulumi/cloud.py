"""What a cloud does with each resource: computed outputs, replacing inputs, and the member
sets of non-authoritative IAM bindings (kept in `<backend>/.standin-cloud.json`).

A `SecretIamMember` adds its member to the (secret, role) binding on create and removes it on
delete, whichever resource added it: two resources for one member share one binding entry,
as Google's `*_iam_member` resources do.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import UNKNOWN, unwrap

# Inputs whose change replaces the resource instead of updating it.
REPLACE_KEYS = {
    "gcp:cloudrunv2/service:Service": ("name", "location", "project"),
    "gcp:artifactregistry/repository:Repository": ("repositoryId", "location", "project"),
    "gcp:serviceaccount/account:Account": ("accountId", "project"),
    "gcp:cloudrun/domainMapping:DomainMapping": ("name", "location"),
    "cloudflare:index/dnsRecord:DnsRecord": ("zoneId",),
    "gcp:secretmanager/secretIamMember:SecretIamMember": ("secretId", "role", "member",
                                                         "project"),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": ("name", "role", "member", "condition"),
    "gcp:serviceaccount/iAMMember:IAMMember": ("serviceAccountId", "role", "member"),
    "gcp:cloudscheduler/job:Job": ("name", "region", "project"),
    "gcp:workflows/workflow:Workflow": ("name", "region", "project"),
    "gcp:projects/iAMMember:IAMMember": ("project", "role", "member", "condition"),
    "gcp:monitoring/notificationChannel:NotificationChannel": ("type", "project"),
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": ("project", "monitoredResource"),
    "gcp:monitoring/alertPolicy:AlertPolicy": ("project",),
    "gcp:monitoring/dashboard:Dashboard": ("project",),
    "gcp:billing/budget:Budget": ("billingAccount",),
}
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
SERVICE = "gcp:cloudrunv2/service:Service"


class Cloud:
    """The side effects of resource operations that tests look at."""

    lock = threading.Lock()  # registrations arrive on parallel gRPC threads

    def __init__(self, backend_root: Path) -> None:
        self.file = backend_root / ".standin-cloud.json"
        self.services_file = backend_root / ".standin-services.json"

    def services(self) -> dict[str, dict[str, Any]]:
        """Each Cloud Run service's live scaling: what deploys set, and what a test writes
        as a scheduled job (Admin API PATCH) would."""
        if not self.services_file.is_file():
            return {}
        return json.loads(self.services_file.read_text())

    def _service(self, op: str, old: dict | None, new: dict | None) -> None:
        with self.lock, _shared(self.services_file):
            live = self.services()
            if old is not None and op in ("delete", "replace"):
                live.pop(unwrap(old["inputs"]).get("name"), None)
            if new is not None and op in ("create", "update", "replace"):
                inputs = unwrap(new["inputs"])
                live[inputs.get("name")] = inputs.get("scaling") or {}
            _write(self.services_file, live)

    def refreshed(self, res: dict[str, Any]) -> dict[str, Any]:
        """A resource as the cloud has it now: a service's scaling may have been changed
        behind Pulumi's back."""
        if res.get("type") != SERVICE:
            return res
        live = self.services().get(unwrap(res["inputs"]).get("name"))
        if live is None or live == res["inputs"].get("scaling"):
            return res
        return {**res, "inputs": {**res["inputs"], "scaling": live},
                "outputs": {**res["outputs"], "scaling": live}}

    def bindings(self) -> dict[str, list[str]]:
        return json.loads(self.file.read_text()) if self.file.is_file() else {}

    def apply(self, op: str, old: dict | None, new: dict | None) -> None:
        """Record a create, update, replace or delete of a resource."""
        if new is not None and op in ("create", "replace"):
            _made(new)
        if (new or old or {}).get("type") == SERVICE:
            self._service(op, old, new)
            return
        if (new or old or {}).get("type") != SECRET_MEMBER:
            return
        with self.lock, _shared(self.file):
            bindings = self.bindings()
            if old is not None and op in ("delete", "replace"):
                _member(bindings, old, add=False)
            if new is not None and op in ("create", "replace"):
                _member(bindings, new, add=True)
            _write(self.file, bindings)


@contextmanager
def _shared(file: Path) -> Iterator[None]:
    """One process at a time reads and writes `file` (a fleet runs several updates at once)."""
    import fcntl

    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(file: Path, data: Any) -> None:
    tmp = file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(file)


def _made(res: dict[str, Any]) -> None:
    """A team stack's bucket and key become usable: the stand-in backend and KMS find them
    (kept on delete, as the team stack retains them)."""
    from .store import bucket_folder, kms_file

    if res["type"] == "gcp:storage/bucket:Bucket":
        folder = bucket_folder(str(unwrap(res["inputs"]).get("name")))
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    elif res["type"] == "gcp:kms/cryptoKey:CryptoKey":
        file = kms_file(str(res["outputs"]["id"]))
        if file is not None and not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(os.urandom(32))


def _member(bindings: dict[str, list[str]], res: dict[str, Any], add: bool) -> None:
    inputs = unwrap(res["inputs"])
    key = f"{inputs.get('secretId')}|{inputs.get('role')}"
    members = set(bindings.get(key, []))
    (members.add if add else members.discard)(str(inputs.get("member")))
    bindings[key] = sorted(members)


def computed(res: dict[str, Any], old: dict | None, unknown: bool) -> dict[str, Any]:
    """Inputs plus the outputs a cloud would compute (unknown during a preview)."""
    inputs = res["inputs"]
    out = dict(inputs)

    def put(key: str, value: Any) -> None:
        out[key] = UNKNOWN if unknown else value

    typ = res["type"]
    if typ == "gcp:cloudrunv2/service:Service":
        # never a real address: tests point it at a local app (one per service, if named)
        urls = json.loads(os.environ.get("STANDIN_SERVICE_URLS") or "{}")
        put("uri", urls.get(inputs.get("name")) or os.environ.get("STANDIN_SERVICE_URL")
            or "http://127.0.0.1:9")
        # a new revision only when the template changes; service-level scaling makes none
        same_template = old is not None and old["inputs"].get("template") == inputs.get(
            "template")
        revision = (old["outputs"].get("latestCreatedRevision") if same_template and old
                    else f"{inputs.get('name')}-{uuid.uuid4().hex[:5]}")
        put("latestCreatedRevision", revision)
        put("latestReadyRevision", revision)
        traffic = [{"type": t.get("type"), "percent": t.get("percent"),
                    "revision": t.get("revision") or ""}
                   for t in unwrap(inputs.get("traffics") or [])] or [
            {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100, "revision": ""}]
        if os.environ.get("STANDIN_TRAFFIC_SPLIT"):  # half the traffic on an older revision
            traffic = [{**traffic[0], "percent": 50},
                       {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "percent": 50,
                        "revision": f"{inputs.get('name')}-00001-old"}]
        if os.environ.get("STANDIN_REVISION_NOT_READY"):
            put("latestReadyRevision", f"{inputs.get('name')}-00001-old")
        put("trafficStatuses", traffic)
    elif typ == "docker:index/image:Image":
        name = unwrap(inputs.get("imageName", ""))
        digest = hashlib.sha256(name.encode()).hexdigest()
        put("repoDigest", name.rsplit(":", 1)[0] + "@sha256:" + digest)
    elif typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs.get('accountId')}@{inputs.get('project')}.iam.gserviceaccount.com"
        put("email", email)
        put("name", f"projects/{inputs.get('project')}/serviceAccounts/{email}")
    elif typ == "gcp:kms/keyRing:KeyRing":
        put("id", f"projects/{inputs.get('project')}/locations/{inputs.get('location')}"
                  f"/keyRings/{inputs.get('name')}")
    elif typ == "gcp:kms/cryptoKey:CryptoKey":
        put("id", f"{inputs.get('keyRing')}/cryptoKeys/{inputs.get('name')}")
    elif typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
        put("name", f"projects/123456789012/locations/global/workloadIdentityPools/"
                    f"{inputs.get('workloadIdentityPoolId')}")
    elif typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
        put("name", f"projects/123456789012/locations/global/workloadIdentityPools/"
                    f"{inputs.get('workloadIdentityPoolId')}/providers/"
                    f"{inputs.get('workloadIdentityPoolProviderId')}")
    elif typ in ("gcp:monitoring/notificationChannel:NotificationChannel",
                 "gcp:monitoring/alertPolicy:AlertPolicy"):
        kind = "notificationChannels" if "Channel" in typ else "alertPolicies"
        put("name", f"projects/{inputs.get('project')}/{kind}/{uuid.uuid4().int % 10**12}"
            if old is None else old["outputs"].get("name"))
    elif typ == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
        put("uptimeCheckId", f"check-{uuid.uuid4().hex[:10]}" if old is None
            else old["outputs"].get("uptimeCheckId"))
    elif typ == "gcp:monitoring/dashboard:Dashboard":
        put("id", f"projects/123456789012/dashboards/{uuid.uuid4().hex[:12]}" if old is None
            else old["outputs"].get("id"))
    elif typ == "gcp:cloudrun/domainMapping:DomainMapping":
        name = inputs.get("name", "")
        record = {"name": name.split(".")[0], "type": "CNAME", "rrdata": "ghs.googlehosted.com."}
        put("statuses", [{"resourceRecords": [record]}])
    return out


# -- what a real provider would do in Google ---------------------------------------------------

def conditional_binding_fails(res: dict[str, Any]) -> str | None:
    """A conditional `cloudrunv2.ServiceIamMember` create as the real provider makes it: the
    binding is written (a version-3 read and write of the service's policy), then the
    provider's own read of the policy (without `options.requestedPolicyVersion=3`: magic-modules
    mmv1/products/cloudrunv2/Service.yaml has no `iam_conditions_request_type`) sees the role as
    `<role>_withcond_<hash>`, finds no member and clears the resource's ID, which the bridge
    reports as an error (hashicorp/terraform-provider-google#11127 is the same bug class).
    The error text, or None for any other resource."""
    inputs = unwrap(res["inputs"])
    if res["type"] != "gcp:cloudrunv2/serviceIamMember:ServiceIamMember" or not inputs.get(
            "condition"):
        return None
    resource = (f"v2/projects/{inputs['project']}/locations/{inputs['location']}/services/"
                f"{inputs['name']}")
    if os.environ.get("STX_RUN_ENDPOINT"):  # Google is a local fake: write the binding there
        policy = _google("GET", f"{resource}:getIamPolicy?options.requestedPolicyVersion=3")
        policy.setdefault("bindings", []).append(
            {"role": inputs["role"], "members": [inputs["member"]],
             "condition": inputs["condition"]})
        _google("POST", f"{resource}:setIamPolicy", {"policy": {**policy, "version": 3}})
    return (f"creating urn:{res['urn']}: 1 error occurred: * Provider produced inconsistent "
            "result after apply: Root resource was present, but now absent (the IAM policy "
            f"of {inputs['name']} holds no binding {inputs['role']} for {inputs['member']} at "
            "policy version 1)")


def _google(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Cloud Run Admin API call with the application default credentials, as a provider
    makes it."""
    import httpx

    folder = Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    adc = json.loads((folder / "application_default_credentials.json").read_text())
    token = httpx.post(os.environ.get("STX_OAUTH_TOKEN_ENDPOINT") or adc["token_uri"], data={
        "grant_type": "refresh_token", "refresh_token": adc["refresh_token"],
        "client_id": adc["client_id"], "client_secret": adc["client_secret"]}).json()
    response = httpx.request(method, f"{os.environ['STX_RUN_ENDPOINT']}/{path}", json=body,
                             headers={"Authorization": f"Bearer {token['access_token']}"})
    response.raise_for_status()
    return response.json()

