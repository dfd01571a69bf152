"""kvstore/raft stays sans-IO and deterministic: no I/O, no clock, no global
random, and nothing from the rest of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RAFT = Path(__file__).resolve().parents[2] / "kvstore" / "raft"
FORBIDDEN = {
    "asyncio", "grpc", "plyvel", "socket", "time", "datetime", "os", "threading",
    "subprocess", "select", "selectors", "io", "pathlib", "logging",
}  # fmt: skip
RANDOM_MODULE_CALLS = {
    "random", "randrange", "randint", "choice", "shuffle", "sample", "uniform", "seed",
}  # fmt: skip

FILES = sorted(RAFT.glob("*.py"))


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_raft_package_has_modules_to_check() -> None:
    assert {"core.py", "rawnode.py", "log.py"} <= {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_raft_module_does_no_io_and_imports_nothing_outside_raft(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for module in imported_modules(tree):
        top = module.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {module}"
        if top == "kvstore":
            assert module.startswith("kvstore.raft"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_raft_module_uses_no_global_random_state(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
        ):
            # random.Random (an injected, seeded generator) is the only use.
            assert node.attr not in RANDOM_MODULE_CALLS, f"{path.name} calls random.{node.attr}"
