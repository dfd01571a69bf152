"""Generate kvstore's protobuf and gRPC modules from the .proto files here.

    python proto/generate.py            # writes kvstore/api/pb/ (what `make proto` runs)
    python proto/generate.py --out DIR  # writes DIR instead (the drift test uses this)

For each proto/NAME.proto, protoc (from grpcio-tools) emits NAME_pb2.py and
NAME_pb2.pyi, plus NAME_pb2_grpc.py when the file defines a service. Two
rewrites then make the output fit our package, both plain text substitutions
that must match exactly as often as expected (or generation fails loudly):

1. protoc writes `import kv_pb2 as ...` for a dependency, since the .proto
   files import each other by bare name; we rewrite it to
   `from kvstore.api.pb import kv_pb2 as ...`.
2. protoc registers every file in protobuf's process-wide default descriptor
   pool. Other etcd client libraries (aetcd, etcd3) register their own copies
   of etcdserverpb and mvccpb there, and two definitions of one message name
   in one pool are an import-time error. So our modules register in a pool of
   their own, kvstore.api.pb.POOL, defined by the __init__.py written here.

Every file also gets a `# mypy: ignore-errors` first line: protoc's output is
not strict-clean (and protobuf ships no type information), but the .pyi stubs
still give mypy the message classes' fields and constructors.

The output directory ends up holding exactly the generated files: stale
ones are deleted, unchanged ones are left untouched. The result depends only
on the .proto files and the grpcio-tools version.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parent
DEFAULT_OUT = REPO_ROOT / "kvstore" / "api" / "pb"
PACKAGE = "kvstore.api.pb"

GENERATED_PATTERNS = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py", "__init__.py")

MYPY_HEADER = "# mypy: ignore-errors\n"

INIT_TEMPLATE = '''\
"""Generated protobuf and gRPC modules: do not edit; run `make proto`.

Sources: proto/*.proto; generator: proto/generate.py (grpcio-tools {tools}).

Every module here registers its descriptors in POOL, a descriptor pool of
our own, not in protobuf's default pool, so that another etcd client library
loaded in the same process (one that defines etcdserverpb too) cannot clash.
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
'''

_IMPORT_RE = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)
_DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
_OUR_POOL = "_KVSTORE_POOL.AddSerializedFile("
_IMPORTS_MARK = "# @@protoc_insertion_point(imports)\n"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def _tools_version() -> str:
    from importlib.metadata import version

    return version("grpcio-tools")


def _run_protoc(out: Path) -> None:
    from grpc_tools import protoc

    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_DIR}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p) for p in proto_files()),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def _rewrite_imports(text: str) -> str:
    return _IMPORT_RE.sub(rf"from {PACKAGE} import \1 as \2", text)


def _use_our_pool(name: str, text: str) -> str:
    if text.count(_DEFAULT_POOL) != 1 or text.count(_IMPORTS_MARK) != 1:
        raise SystemExit(f"{name}: unexpected protoc output; update proto/generate.py")
    text = text.replace(_DEFAULT_POOL, _OUR_POOL)
    return text.replace(
        _IMPORTS_MARK, f"{_IMPORTS_MARK}from {PACKAGE} import POOL as _KVSTORE_POOL\n"
    )


def render() -> dict[str, str]:
    """Run protoc and return {file name: final text} of every generated file."""
    files = {"__init__.py": MYPY_HEADER + INIT_TEMPLATE.format(tools=_tools_version())}
    with tempfile.TemporaryDirectory(prefix="kvstore-protoc-") as tmp:
        raw = Path(tmp)
        _run_protoc(raw)
        for path in sorted(raw.iterdir()):
            text = path.read_text(encoding="utf-8")
            if path.name.endswith("_pb2_grpc.py") and "\nclass " not in text:
                continue  # the .proto defines no service: nothing worth keeping
            text = _rewrite_imports(text)
            if path.name.endswith("_pb2.py"):
                text = _use_our_pool(path.name, text)
            files[path.name] = MYPY_HEADER + text
    return files


def generate(out: Path) -> list[str]:
    """Write the generated files into `out`; return the names written or removed."""
    out.mkdir(parents=True, exist_ok=True)
    files = render()
    changed: list[str] = []
    for pattern in GENERATED_PATTERNS:
        for stale in sorted(out.glob(pattern)):
            if stale.name not in files:
                stale.unlink()
                changed.append(stale.name)
    for name, text in sorted(files.items()):
        target = out / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    changed = generate(args.out)
    for name in changed:
        print(f"updated {args.out / name}")
    if not changed:
        print(f"{args.out}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
