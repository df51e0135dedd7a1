"""`python -m app`: the one way the service is started (`make serve`, the image, the end-to-end tests
and the benchmarks all use it), with host, port, logging and shutdown from LENET_* settings."""

from __future__ import annotations

import socket
import sys

import uvicorn

from app.config import Settings, get_settings
from app.logs import uvicorn_log_config


def ports_in_use(settings: Settings) -> list[str]:
    """One line per port the service would listen on that is taken (another server, or a second `make serve`
    left on gRPC's 8001), checked before any model loads: else the HTTP port fails only after every model
    has loaded, and the gRPC port with a traceback. A probe, not a reservation: the listeners still report a
    port taken in between."""
    lines = []
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    where = f"[{settings.host}]" if family == socket.AF_INET6 else settings.host
    for variable, port in (("LENET_PORT", settings.port), ("LENET_GRPC_PORT", settings.grpc_port)):
        if not port:
            continue  # gRPC off
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners: TIME_WAIT is free
            try:
                probe.bind((settings.host, port))
            except OSError as exc:
                off = ", or 0 to turn gRPC off" if variable == "LENET_GRPC_PORT" else ""
                lines.append(
                    f"error: {variable}={port}: {where}:{port} is in use ({exc.strerror}); "
                    f"is another server running? set {variable} to another port{off}"
                )
    return lines


def main() -> None:
    settings = get_settings()
    if taken := ports_in_use(settings):
        print("\n".join(taken), file=sys.stderr)
        raise SystemExit(2)
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_level),
        access_log=settings.access_log,
        timeout_keep_alive=settings.keep_alive_s,
        # uvicorn annotates int, but only hands it to asyncio.wait_for, which takes seconds as a float.
        timeout_graceful_shutdown=settings.graceful_shutdown_s,  # type: ignore[arg-type]
        loop=settings.loop,
    )


if __name__ == "__main__":
    main()
