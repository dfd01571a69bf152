"""Go formatting that etcdctl's output depends on, reproduced exactly.

- `marshal`: Go's encoding/json applied to the gogo-protobuf structs that
  etcdctl prints (field names = the .proto names, 64-bit integers as
  numbers, bytes as base64, zero values omitted, a oneof as
  {"GoOneofName": {"GoFieldName": value}}, HTML characters escaped);
- `quote`: strconv.Quote (fmt's %q);
- `duration`: time.Duration.String;
- `human_bytes`: go-humanize's Bytes (SI units), used by `endpoint status`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor  # type: ignore[import-untyped]
from google.protobuf.message import Message  # type: ignore[import-untyped]

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def json_string(text: str) -> str:
    """A JSON string literal as Go's encoding/json writes it."""
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " " or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":  # lone surrogate from bad UTF-8
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(value: Any) -> str:
    """Compact JSON of dicts (insertion order), lists, str, int, bool, None."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json_string(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot marshal {type(value).__name__}")


def go_name(proto_name: str) -> str:
    """response_put -> ResponsePut (protoc-gen-gogo's CamelCase)."""
    return "".join(part[:1].upper() + part[1:] for part in proto_name.split("_"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if field.type == FieldDescriptor.TYPE_STRING:
        return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return to_go(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool(value)
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        raise TypeError("floating point fields are not printed by etcdctl")
    return int(value)  # integers and enums (gogo enums marshal as numbers)


# Fields of our .proto (etcd 3.5's) that etcdctl 3.4's structs do not have,
# so etcdctl 3.4 never prints them.
NOT_IN_ETCD_34: dict[str, frozenset[str]] = {
    "etcdserverpb.StatusResponse": frozenset({"storageVersion", "dbSizeQuota", "downgradeInfo"}),
    "etcdserverpb.HashKVResponse": frozenset({"hash_revision"}),
}


def to_go(msg: Message) -> dict[str, Any]:
    """The dict that encoding/json would produce for the gogo struct of `msg`."""
    out: dict[str, Any] = {}
    done_oneofs: set[str] = set()
    skip = NOT_IN_ETCD_34.get(msg.DESCRIPTOR.full_name, frozenset())
    for field in msg.DESCRIPTOR.fields:
        if field.name in skip:
            continue
        oneof = field.containing_oneof
        if oneof is not None:
            # A oneof is one interface-typed Go field.
            if oneof.name in done_oneofs:
                continue
            done_oneofs.add(oneof.name)
            which = msg.WhichOneof(oneof.name)
            if which is None:
                out[go_name(oneof.name)] = None
            else:
                chosen = msg.DESCRIPTOR.fields_by_name[which]
                out[go_name(oneof.name)] = {go_name(which): _scalar(chosen, getattr(msg, which))}
            continue
        value = getattr(msg, field.name)
        if field.is_repeated:
            if len(value):
                out[field.name] = [_scalar(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if msg.HasField(field.name):
                out[field.name] = to_go(value)
        elif value:
            out[field.name] = _scalar(field, value)
    return out


def marshal(msg: Message) -> str:
    return dumps(to_go(msg))


# ---------------------------------------------------------------------------
# fmt


def quote(data: bytes | str) -> str:
    """strconv.Quote of a Go string (fmt's %q)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    out = ['"']
    i = 0
    while i < len(raw):
        b = raw[i]
        if b < 0x80:
            ch = chr(b)
            if ch in ('"', "\\"):
                out.append("\\" + ch)
            elif 0x20 <= b < 0x7F:
                out.append(ch)
            else:
                out.append(_control(b))
            i += 1
            continue
        size = 2 if b >= 0xC0 else 1
        if b >= 0xE0:
            size = 3
        if b >= 0xF0:
            size = 4
        try:
            rune = raw[i : i + size].decode("utf-8")
        except UnicodeDecodeError:
            out.append(f"\\x{b:02x}")
            i += 1
            continue
        out.append(rune if rune.isprintable() else _rune_escape(ord(rune)))
        i += size
    out.append('"')
    return "".join(out)


_CONTROL = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _control(b: int) -> str:
    return _CONTROL.get(b, f"\\x{b:02x}")


def _rune_escape(code: int) -> str:
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def duration(seconds: float) -> str:
    """time.Duration(seconds).String(), e.g. 1.94112ms, 2.5s, 1m30s."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return sign + _frac(ns, 1000) + "µs"
    if ns < 1_000_000_000:
        return sign + _frac(ns, 1_000_000) + "ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _frac(rest, 10**9) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")


_SI = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def human_bytes(size: int) -> str:
    """go-humanize Bytes: 24576 -> '25 kB'."""
    if size < 10:
        return f"{size} B"
    exp = math.floor(math.log(size) / math.log(1000))
    val = math.floor(size / 1000**exp * 10 + 0.5) / 10
    fmt = "{:.0f} {}" if val >= 10 else "{:.1f} {}"
    return fmt.format(val, _SI[exp])
