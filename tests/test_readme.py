"""The README stays true: its error table lists exactly the error codes the service can send, and every
relative link or repository path it names (and bench/README.md names) exists."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

import app.errors
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = [pytest.param(README, id="README.md"), pytest.param(REPO_ROOT / "bench" / "README.md", id="bench/README.md")]
APP_SOURCES = sorted(p for p in (REPO_ROOT / "app").rglob("*.py") if "static" not in p.relative_to(REPO_ROOT).parts)
ENVELOPE_BUILDERS = {"error_response"}  # functions that take (status, code, message, ...) and build the envelope
CODE = re.compile(r"[a-z][a-z0-9_]*")
CODE_IN_TEXT = re.compile(r"""["']code["']\s*:\s*["']([a-z][a-z0-9_]*)["']""")  # a hand-written envelope


def service_error_codes() -> dict[str, int]:
    """code -> status of ServiceError and every subclass app.errors defines."""
    found, todo = {}, [app.errors.ServiceError]
    while todo:
        cls = todo.pop()
        found[cls.code] = cls.status
        todo.extend(cls.__subclasses__())
    return found


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and CODE.fullmatch(n.value)
    }


def _assigned(scope: ast.AST, name: str) -> set[str]:
    """Code-like string literals assigned to `name` anywhere in `scope` (e.g. a status -> code mapping)."""
    return {
        s
        for n in ast.walk(scope)
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
        for s in _strings(n.value)
    }


def source_codes(path: Path) -> set[str]:
    """Error codes written as literals in one module: passed to an envelope builder (directly or through a local
    variable), given as `code=...`, set as a class's `code = ...`, or spelled out in a hand-written JSON envelope."""
    tree = ast.parse(path.read_text(), str(path))
    codes: set[str] = set()
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            arguments = [kw.value for kw in node.keywords if kw.arg == "code"]
            if name in ENVELOPE_BUILDERS and len(node.args) >= 2:
                arguments.append(node.args[1])
            for argument in arguments:
                if isinstance(argument, ast.Name):  # resolved within the enclosing functions, then the module
                    holders: list[ast.AST] = [s for s in scopes if any(n is node for n in ast.walk(s))] or [tree]
                    codes |= set().union(*(_assigned(s, argument.id) for s in holders))
                elif not isinstance(argument, ast.Attribute):  # exc.code: the ServiceError classes, walked apart
                    codes |= _strings(argument)
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and any(
                    getattr(t, "id", None) == "code" for t in statement.targets
                ):
                    codes |= _strings(statement.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            text = node.value.decode("utf-8", "replace") if isinstance(node.value, bytes) else node.value
            codes |= set(CODE_IN_TEXT.findall(text))
    return codes


def defined_codes() -> set[str]:
    return set(service_error_codes()) | set().union(*(source_codes(p) for p in APP_SOURCES))


def readme_error_table(text: str) -> dict[str, str]:
    """code -> status cell of the README's `| status | code | when |` table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"\|\s*status\s*\|\s*code\s*\|\s*when\s*\|", line))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        status, code = (cell.strip() for cell in line.strip("|").split("|")[:2])
        assert code.strip("`") not in rows, f"{code} is listed twice"
        rows[code.strip("`")] = status
    return rows


def test_the_collector_sees_every_kind_of_definition(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("""
class Teapot(ServiceError):
    code = "teapot"
BODY = b'{"error":{"code":"hand_written","message":"..."}}'
def handler(exc):
    code = {400: "mapped"}.get(exc.status_code, "fallback")
    return error_response(exc.status_code, code, "m")
def other(exc):
    error_response(500, "literal", "m")
    error_response(exc.status, exc.code, exc.message)
    raise Something("message", code="keyword")
""")
    assert source_codes(module) == {"teapot", "hand_written", "mapped", "fallback", "literal", "keyword"}


def test_the_error_table_lists_exactly_the_codes_the_service_defines() -> None:
    table = readme_error_table(README.read_text())
    defined = defined_codes()
    assert not defined - set(table), (
        f"codes the service can send but the README's error table misses: {sorted(defined - set(table))}"
    )
    assert not set(table) - defined, (
        f"codes in the README's error table that the service no longer defines: {sorted(set(table) - defined)}"
    )


def test_the_error_table_gives_each_domain_error_its_status() -> None:
    table = readme_error_table(README.read_text())
    wrong = {
        code: (table.get(code), status)
        for code, status in service_error_codes().items()
        if code in table and table[code] != str(status)
    }
    assert not wrong, f"code: (README status, app.errors status): {wrong}"


def _ignored(relative: str) -> bool:
    """Paths the repository creates but does not commit (data/, bench/results/, ...), as .gitignore names them."""
    patterns = [
        p.strip().strip("/")
        for p in (REPO_ROOT / ".gitignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    parts = relative.strip("/").split("/")
    return any(fnmatch.fnmatch("/".join(parts[:i]), p) for p in patterns for i in range(1, len(parts) + 1))


def named_paths(doc: Path) -> list[tuple[str, Path]]:
    """(as written, resolved) for every relative markdown link (resolved from the file's folder) and every
    `path` in backticks under one of the repository's top-level entries (resolved from the repository root)."""
    text = doc.read_text()
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z][a-z0-9+.-]*:|#", target):
            found.append((target, (doc.parent / target.split("#", 1)[0]).resolve()))
    top = {p.name for p in REPO_ROOT.iterdir()} - {".git", ".venv"}
    for quoted in re.findall(r"`([^`\s]+)`", re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)):
        first = quoted.split("/", 1)[0]
        if (first in top or first == "..") and not re.search(r"[<>*{}]|\.\.\.", quoted) and not _ignored(quoted):
            found.append((quoted, (REPO_ROOT / quoted).resolve()))
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_and_path_exists_in_the_repository(doc: Path) -> None:
    paths = named_paths(doc)
    assert paths, f"{doc.name}: no paths found; the collector is broken"
    outside = [written for written, resolved in paths if not resolved.is_relative_to(REPO_ROOT)]
    assert not outside, f"{doc.relative_to(REPO_ROOT)} names paths outside the repository: {outside}"
    missing = [written for written, resolved in paths if not resolved.exists()]
    assert not missing, f"{doc.relative_to(REPO_ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_anchor_link_names_a_heading(doc: Path) -> None:
    def anchors(path: Path) -> set[str]:
        headings = re.findall(r"^#+\s+(.+)$", re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL), re.MULTILINE)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}

    broken = []
    for target in re.findall(r"\]\(([^)\s]*#[^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        file, anchor = target.split("#", 1)
        if anchor not in anchors((doc.parent / file).resolve() if file else doc):
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO_ROOT)}: links to missing headings: {broken}"
