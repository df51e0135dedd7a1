"""`inference.GRPCInferenceService`: the KServe V2 methods, over the model repository. Triton's extra methods
(statistics, shared memory, repository control, streaming) are not registered: gRPC answers UNIMPLEMENTED."""

from __future__ import annotations

from typing import Any

import grpc
from tritonclient.grpc import service_pb2 as pb

from app.errors import BadRequest, ModelNotFound
from app.grpc_v2.tensors import decode_infer, encode_infer
from app.protocol_v2 import model_metadata
from app.repository import ModelRepository

SERVICE = "inference.GRPCInferenceService"
METHODS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")
Context = grpc.aio.ServicerContext[Any, Any]


class InferenceServicer:
    def __init__(self, repository: ModelRepository, max_instances: int, server_version: str) -> None:
        self.repository = repository
        self.max_instances = max_instances
        self.server_version = server_version

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.repository.ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        """Ready when an infer would be answered now. An unknown model or version is not ready, as Triton
        answers (REST says 404): tritonclient's is_model_ready() then returns False instead of raising."""
        try:
            ready = await self.repository.can_answer(self._name(request.name), _version(request.version))
        except ModelNotFound:
            ready = False
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        # No extensions: binary_tensor_data is HTTP's, and the repository extension is not served over gRPC.
        return pb.ServerMetadataResponse(name="lenet-serve", version=self.server_version, extensions=[])

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        name, version = self._name(request.name), _version(request.version)
        versions = sorted(self.repository.versions(name))
        if not versions or (version is not None and version not in versions):
            raise ModelNotFound(f"no model {name!r}" + (f" version {version}" if version is not None else ""))
        metadata = model_metadata(name, versions)  # the REST answer, field for field
        return pb.ModelMetadataResponse(
            name=str(metadata["name"]),
            versions=[str(v) for v in _items(metadata["versions"])],
            platform=str(metadata["platform"]),
            inputs=[_tensor(t) for t in _items(metadata["inputs"])],
            outputs=[_tensor(t) for t in _items(metadata["outputs"])],
        )

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        name = self._name(request.model_name)
        self.repository.admit(name)  # shed load before decoding when the queue is full
        decoded = decode_infer(request, self.max_instances)
        served, probabilities = await self.repository.predict(name, _version(request.model_version), decoded.images)
        return encode_infer(served.name, served.version, request.id, probabilities, decoded.raw_output)

    def _name(self, name: str) -> str:
        """An empty model name means the default model, as a REST request that names none."""
        return name or self.repository.settings.default_model


def add_to_server(servicer: InferenceServicer, server: grpc.aio.Server) -> None:
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method),
            request_deserializer=getattr(pb, f"{method}Request").FromString,
            response_serializer=getattr(pb, f"{method}Response").SerializeToString,
        )
        for method in METHODS
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def _version(text: str) -> int | None:
    """A request's version string: empty for the serving version, else a non-negative integer."""
    if not text:
        return None
    if not text.isdigit() or not text.isascii():
        raise BadRequest(f"model version {text[:40]!r} is not a non-negative integer")
    try:
        return int(text)
    except ValueError:  # past int()'s limit of 4300 digits (REST's query parameter: 422 the same way)
        raise BadRequest(f"model version {text[:40]!r}... ({len(text)} digits) is not a version number") from None


def _items(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _tensor(spec: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=str(spec["name"]), datatype=str(spec["datatype"]), shape=[int(d) for d in spec["shape"]]
    )
