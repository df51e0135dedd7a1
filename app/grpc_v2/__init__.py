"""KServe V2 over gRPC: `inference.GRPCInferenceService` (tritonclient's generated stubs), the standard health
service and server reflection, on one grpc.aio server in uvicorn's event loop, over the same model repository
and batchers as the REST routes. Named grpc_v2 so that it never shadows the `grpc` library."""

from __future__ import annotations

from app.grpc_v2.server import GrpcServer

__all__ = ["GrpcServer"]
