"""Tests of the benchmark scripts, which are files in bench/, not a package: `load_bench` loads one."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import REPO_ROOT


def load_bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as importlib's recipe does: its dataclasses look their module up there
    spec.loader.exec_module(module)  # the script puts bench/ on sys.path itself
    return module
