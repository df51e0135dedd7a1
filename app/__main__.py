"""`python -m app`: uvicorn with host, port and log settings from LENET_* variables."""
from __future__ import annotations

import uvicorn

from app.config import get_settings

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=settings.access_log, timeout_graceful_shutdown=10)
