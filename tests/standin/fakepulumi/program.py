"""Runs the caller's inline program through the language server at `--client`: serves a
ResourceMonitor and an Engine over gRPC and calls the language runtime's `Run`."""

from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING, Any

from .common import UNKNOWN, Fail, project

if TYPE_CHECKING:
    from .update import Update


class Program:
    """Runs the inline program through the language server at --client."""

    def __init__(self, update: Update, config: dict[str, str], secret_keys: list[str]) -> None:
        self.update = update
        self.config = config
        self.secret_keys = secret_keys

    def run(self) -> str | None:
        import grpc
        from google.protobuf import empty_pb2, json_format, struct_pb2
        from pulumi.runtime.proto import (
            engine_pb2,
            engine_pb2_grpc,
            language_pb2,
            language_pb2_grpc,
            provider_pb2,
            resource_pb2,
            resource_pb2_grpc,
        )

        update = self.update
        stack = update.stack
        root: dict[str, str] = {}

        def to_dict(message: Any) -> dict[str, Any]:
            return json_format.MessageToDict(message) if message is not None else {}

        def to_struct(data: dict[str, Any]) -> Any:
            result = struct_pb2.Struct()
            result.update(data)
            return result

        def make_urn(parent: str, typ: str, name: str) -> str:
            prefix = ""
            if parent:
                parent_type = parent.split("::")[2]
                if not parent_type.startswith("pulumi:pulumi:Stack"):
                    prefix = parent_type + "$"
            return f"urn:pulumi:{stack}::{project()}::{prefix}{typ}::{name}"

        class Monitor(resource_pb2_grpc.ResourceMonitorServicer):
            def GetDeploymentInfo(self, request: Any, context: Any) -> Any:
                return resource_pb2.DeploymentInfo(
                    supportedFeatures=[resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS])

            def SupportsFeature(self, request: Any, context: Any) -> Any:
                return resource_pb2.SupportsFeatureResponse(hasSupport=request.id == "secrets")

            def RegisterResource(self, request: Any, context: Any) -> Any:
                urn = make_urn(request.parent, request.type, request.name)
                property_deps = [u for deps in request.propertyDependencies.values()
                                 for u in deps.urns]
                res = {"urn": urn, "type": request.type, "name": request.name,
                       "parent": request.parent, "custom": request.custom,
                       "provider": request.provider, "inputs": to_dict(request.object),
                       "aliases": list(request.aliasURNs),
                       "dependencies": sorted({*request.dependencies, *property_deps})}
                try:
                    outputs = update.register(res)
                except Fail as err:
                    context.abort(grpc.StatusCode.UNKNOWN, str(err))
                res_id = str(outputs.get("id") or f"{request.name}-id") if request.custom else ""
                res_id = "" if res_id == UNKNOWN else res_id  # a preview: not known yet
                return resource_pb2.RegisterResourceResponse(
                    urn=urn, id=res_id, object=to_struct(outputs))

            def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
                if "pulumi:pulumi:Stack" in request.urn:
                    res = update.new.get(request.urn)
                    if res is not None:
                        res["stack_outputs"] = to_dict(request.outputs)
                return empty_pb2.Empty()

            def Invoke(self, request: Any, context: Any) -> Any:
                result = {}
                if request.tok == "gcp:organizations/getClientConfig:getClientConfig":
                    result = {"accessToken": "ya29.standin-access-token",
                              "project": self_config.get("gcp:project", ""),
                              "region": self_config.get("gcp:region", ""), "id": "cc"}
                elif request.tok == "gcp:organizations/getProject:getProject":
                    result = {"number": "123456789012", "projectId": self_config.get(
                        "gcp:project", ""), "id": "p"}
                return provider_pb2.InvokeResponse(**{"return": to_struct(result)})

            def ReadResource(self, request: Any, context: Any) -> Any:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "read is not supported")

            def RegisterPackage(self, request: Any, context: Any) -> Any:
                return resource_pb2.RegisterPackageResponse(ref=f"pkg-{request.name}")

            def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:
                return empty_pb2.Empty()

        class Engine(engine_pb2_grpc.EngineServicer):
            def Log(self, request: Any, context: Any) -> Any:
                severity = {engine_pb2.DEBUG: "debug", engine_pb2.INFO: "info",
                            engine_pb2.WARNING: "warning",
                            engine_pb2.ERROR: "error"}[request.severity]
                if severity != "debug":
                    update.diagnostic(request.urn or None, request.message, severity)
                    if severity == "error":
                        update.failed = True
                return empty_pb2.Empty()

            def GetRootResource(self, request: Any, context: Any) -> Any:
                return engine_pb2.GetRootResourceResponse(urn=root.get("urn", ""))

            def SetRootResource(self, request: Any, context: Any) -> Any:
                root["urn"] = request.urn
                return engine_pb2.SetRootResourceResponse()

        self_config = self.config
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(Monitor(), server)
        engine_pb2_grpc.add_EngineServicer_to_server(Engine(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            client = update.cli.flag("--client")
            if not client:
                raise Fail("the stand-in runs only inline programs (--client)")
            with grpc.insecure_channel(client) as channel:
                response = language_pb2_grpc.LanguageRuntimeStub(channel).Run(
                    language_pb2.RunRequest(
                        project=project(), stack=stack, pwd=str(update.cli.cwd), program=".",
                        args=[f"127.0.0.1:{port}"], config=self.config,
                        configSecretKeys=self.secret_keys, dryRun=update.preview,
                        parallel=int(update.cli.flag("--parallel") or 4),
                        monitor_address=f"127.0.0.1:{port}", organization="organization"))
            return response.error or None
        finally:
            server.stop(0)
