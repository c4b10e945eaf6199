"""inet (u32, 4 and 16 bytes, family from a sibling), port, tcp_state."""

import socket

import pytest

from pyeunomia.decoders import DECODERS, sibling_params


def test_inet_forms():
    plain = DECODERS["inet"].make({})
    loopback = int.from_bytes(bytes([127, 0, 0, 1]), "little")  # a __be32 read on this little-endian host
    assert plain(loopback) == "127.0.0.1"
    assert plain(bytes([10, 1, 2, 3])) == "10.1.2.3"
    assert plain(socket.inet_pton(socket.AF_INET6, "fe80::1")) == "fe80::1"
    assert plain([0] * 15 + [1]) == "::1"
    by_family = DECODERS["inet"].make({"family": "af"})
    v4_in_16 = bytes([192, 168, 0, 9]) + bytes(12)
    assert by_family((v4_in_16, socket.AF_INET)) == "192.168.0.9"
    assert by_family((bytes(15) + b"\x01", socket.AF_INET6)) == "::1"
    assert by_family((bytes(16), 0)) == "0" * 32  # no family: the bytes in hex
    assert sibling_params(DECODERS["inet"], {"family": "af"}) == ["af"]
    with pytest.raises(ValueError, match="family"):
        DECODERS["inet"].make({"family": 2})


def test_port_host_and_network_order():
    assert DECODERS["port"].make({})(8080) == 8080
    assert DECODERS["port"].make({"network": True})(socket.htons(8080)) == 8080
    with pytest.raises(ValueError, match="network"):
        DECODERS["port"].make({"network": "yes"})


def test_tcp_states():
    decode = DECODERS["tcp_state"].make({})
    assert [decode(n) for n in (1, 2, 7, 10, 12)] == ["ESTABLISHED", "SYN_SENT", "CLOSE", "LISTEN", "NEW_SYN_RECV"]
    assert [decode(0), decode(99)] == ["0", "99"]
