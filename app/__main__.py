"""`python -m app`: the one way the service is started (`make serve`, the image, the end-to-end tests
and the benchmarks all use it), with host, port, logging and shutdown from LENET_* settings."""

from __future__ import annotations

import uvicorn

from app.config import get_settings
from app.logs import uvicorn_log_config


def main() -> None:
    settings = get_settings()
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
