import socket

from infrastructure.sockets import readable_now
from infrastructure.testing.descriptors import descriptors_taken_below


def test_a_socket_numbered_past_1024_reads_idle_then_readable_when_written_to_or_closed():
    with descriptors_taken_below(1100):
        ours, peer = socket.socketpair()
    try:
        assert ours.fileno() >= 1100
        assert not readable_now(ours.fileno())
        peer.send(b"x")
        assert readable_now(ours.fileno())
        ours.recv(1)
        assert not readable_now(ours.fileno())
        peer.close()
        assert readable_now(ours.fileno())
    finally:
        ours.close()
        peer.close()
