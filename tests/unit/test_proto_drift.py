"""The committed generated modules in kvstore/api/pb must be exactly what
proto/generate.py produces from proto/*.proto today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("grpc_tools", reason="grpcio-tools (the [dev] extra) is not installed")

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "kvstore" / "api" / "pb"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_kvstore_proto_generate", REPO / "proto" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _listing(directory: Path) -> dict[str, str]:
    generator = _load_generator()
    names = {p.name for pattern in generator.GENERATED_PATTERNS for p in directory.glob(pattern)}
    return {name: (directory / name).read_text(encoding="utf-8") for name in sorted(names)}


def test_generated_modules_match_the_proto_files(tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)
    fresh = _listing(tmp_path)
    committed = _listing(COMMITTED)
    missing = sorted(fresh.keys() - committed.keys())
    extra = sorted(committed.keys() - fresh.keys())
    stale = sorted(
        name for name in fresh.keys() & committed.keys() if fresh[name] != committed[name]
    )
    problems = [
        *(f"missing: {name}" for name in missing),
        *(f"should not exist: {name}" for name in extra),
        *(f"out of date: {name}" for name in stale),
    ]
    assert not problems, (
        "kvstore/api/pb does not match proto/ (or was made by another grpcio-tools "
        "version than the one installed): run make proto\n  " + "\n  ".join(problems)
    )


def test_generator_writes_only_what_changed(tmp_path: Path) -> None:
    generator = _load_generator()
    generator.generate(tmp_path)
    (tmp_path / "leftover_pb2.py").write_text("# stale\n", encoding="utf-8")
    assert generator.generate(tmp_path) == ["leftover_pb2.py"]
    assert generator.generate(tmp_path) == []
