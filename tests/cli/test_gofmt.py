"""Go formatting reproduced for etcdctl-identical output (values checked
against Go's fmt, encoding/json and go-humanize)."""

from __future__ import annotations

from kvstore.api.pb import rpc_pb2
from kvstore.cli import gofmt


def test_duration_like_go() -> None:
    assert gofmt.duration(0) == "0s"
    assert gofmt.duration(0.00194112) == "1.94112ms"
    assert gofmt.duration(0.000123) == "123µs"
    assert gofmt.duration(2.5) == "2.5s"
    assert gofmt.duration(90) == "1m30s"
    assert gofmt.duration(3600) == "1h0m0s"


def test_quote_like_strconv() -> None:
    assert gofmt.quote(b"foo") == '"foo"'
    assert gofmt.quote(b'a"b\\c\n\x00\xff') == '"a\\"b\\\\c\\n\\x00\\xff"'
    assert gofmt.quote("été".encode()) == '"été"'


def test_human_bytes_like_go_humanize() -> None:
    assert gofmt.human_bytes(5) == "5 B"
    assert gofmt.human_bytes(24576) == "25 kB"
    assert gofmt.human_bytes(20480) == "20 kB"
    assert gofmt.human_bytes(1_500_000) == "1.5 MB"


def test_marshal_omits_zero_values_and_escapes_html() -> None:
    resp = rpc_pb2.MemberListResponse()
    resp.header.cluster_id = 2**64 - 1
    m = resp.members.add(ID=1, name="<a&b>")
    m.peerURLs.append("http://x")
    assert gofmt.marshal(resp) == (
        '{"header":{"cluster_id":18446744073709551615},'
        '"members":[{"ID":1,"name":"\\u003ca\\u0026b\\u003e","peerURLs":["http://x"]}]}'
    )


def test_marshal_oneof_as_gogo_struct() -> None:
    resp = rpc_pb2.TxnResponse(succeeded=True)
    op = resp.responses.add()
    op.response_put.header.revision = 7
    assert gofmt.marshal(resp) == (
        '{"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":7}}}}]}'
    )
