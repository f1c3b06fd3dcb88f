"""STOMP codec: wire format, incremental parsing, limits and session negotiation."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.stomp import (
    MAX_FRAME_BYTES,
    MAX_HEADERS,
    Frame,
    FrameParser,
    StompProtocolError,
    encode,
    encode_message,
    error_frame,
    message_head,
    message_tail,
    negotiate_heartbeat,
    negotiate_version,
)

VERSIONS = ["1.0", "1.1", "1.2"]
# What stomp.js 2.3.3 sends first over a WebSocket (no login configured).
STOMPJS_CONNECT = b"CONNECT\naccept-version:1.1,1.0\nheart-beat:10000,10000\n\n\0"


def parse(data: bytes, version: str = "1.2", chunks: list[int] | None = None, **kwargs) -> list[Frame | None]:
    """Feed data split at the given offsets and collect everything the parser returns."""
    parser = FrameParser(version=version, **kwargs)
    cuts = [0, *(chunks or []), len(data)]
    out: list[Frame | None] = []
    for start, end in pairwise(cuts):
        out.extend(parser.feed(data[start:end]))
    return out


def send(body: bytes = b"", *headers: tuple[str, str]) -> Frame:
    return Frame("SEND", (("destination", "/app/rooms.1"), *headers), body)


# --- encoding -------------------------------------------------------------------------------------


def test_it_encodes_command_headers_blank_line_body_and_nul():
    raw = encode(Frame("SEND", (("destination", "/app/x"),), b"hi"))
    assert raw == b"SEND\ndestination:/app/x\ncontent-length:2\n\nhi\0"


def test_it_adds_no_content_length_to_an_empty_body():
    assert encode(Frame("DISCONNECT", (("receipt", "77"),))) == b"DISCONNECT\nreceipt:77\n\n\0"


def test_it_keeps_a_given_content_length_instead_of_adding_another():
    raw = encode(Frame("SEND", (("content-length", "2"),), b"hi"))
    assert raw.count(b"content-length") == 1


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.1", b"SEND\na\\cb:x\\cy\\nz\\\\w\r\n\n\0"),
        ("1.2", b"SEND\na\\cb:x\\cy\\nz\\\\w\\r\n\n\0"),
    ],
)
def test_it_escapes_header_names_and_values_per_version(version, expected):
    assert encode(Frame("SEND", (("a:b", "x:y\nz\\w\r"),)), version) == expected


def test_version_1_0_never_emits_line_breaks_or_name_colons():
    raw = encode(Frame("SEND", (("a:b\n", "x:y\r\nz\\w"),)), "1.0")
    assert raw == b"SEND\nab:x:y z\\w\n\n\0"


@pytest.mark.parametrize("command", ["CONNECT", "CONNECTED"])
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_it_never_escapes_connect_and_connected_frames(command, version):
    raw = encode(Frame(command, (("login", "a\\b:c\nd"),)), version)
    assert raw == command.encode() + b"\nlogin:a\\b:c d\n\n\0"


def test_it_replaces_unencodable_surrogates_instead_of_failing():
    assert encode(Frame("SEND", (("a", "x\ud800"),)), "1.2") == b"SEND\na:x?\n\n\0"
    assert encode_message("/a\ud800", "s", "m", b"", "1.2").startswith(b"MESSAGE\ndestination:/a?\n")


def test_it_rejects_an_unknown_version_when_encoding():
    with pytest.raises(ValueError, match="version"):
        encode(send(), "2.0")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("body", [b"", b'{"text":"hi"}', b"a\0b"])
@pytest.mark.parametrize("value", ["plain", "a:b\\c\nd\re"])
def test_encode_message_matches_encode_byte_for_byte(version, body, value):
    headers = (
        ("destination", value),
        ("content-type", "application/json"),
        ("subscription", value),
        ("message-id", value),
    )
    expected = encode(Frame("MESSAGE", headers, body), version)
    assert encode_message(value, value, value, body, version) == expected


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("body", [b"", b'{"text":"hi"}', b"a\0b"])
@pytest.mark.parametrize("value", ["plain", "a:b\\c\nd\re", "/a\ud800"])
def test_a_frame_put_together_from_its_head_and_tail_is_the_encoded_one(version, body, value):
    # As a session builds its MESSAGE frames: a message-id of hex digits, "-" and digits.
    message_id = "0123456789abcdef0123456789abcdef-17"
    built = message_head(value, value, version) + message_id.encode() + message_tail(body)
    assert built == encode_message(value, value, message_id, body, version)


def test_error_frame_carries_message_content_type_receipt_and_details():
    frame = error_frame("bad frame", receipt_id="r-1", details="line 3\nwas wrong")
    assert frame.command == "ERROR"
    assert frame.header("message") == "bad frame"
    assert frame.header("content-type") == "text/plain"
    assert frame.header("receipt-id") == "r-1"
    assert frame.body == b"line 3\nwas wrong"


def test_error_frame_omits_receipt_id_unless_given():
    assert error_frame("nope").header("receipt-id") is None


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_it_round_trips_a_frame_in_every_version(version):
    frame = send(b"hello", ("receipt", "9"), ("x-tag", "a b"))
    expected = Frame("SEND", (*frame.headers, ("content-length", "5")), b"hello")
    assert parse(encode(frame, version), version) == [expected]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_it_round_trips_escaped_colon_newline_backslash_and_carriage_return(version):
    frame = Frame("SEND", (("we:ird\\name", "a:b\nc\\d\re\\n"),))
    assert parse(encode(frame, version), version) == [frame]


def test_it_does_not_unescape_connect_headers():
    [frame] = parse(b"CONNECT\nlogin:a\\nb\\q\n\n\0")
    assert frame is not None
    assert frame.header("login") == "a\\nb\\q"


def test_it_reads_the_stompjs_2_3_3_connect_frame():
    [frame] = parse(STOMPJS_CONNECT)
    assert frame == Frame("CONNECT", (("accept-version", "1.1,1.0"), ("heart-beat", "10000,10000")))


def test_it_splits_header_lines_at_the_first_colon():
    [frame] = parse(b"SEND\ndestination:/a:b:c\n\n\0", "1.0")
    assert frame is not None
    assert frame.header("destination") == "/a:b:c"


def test_header_lookup_returns_the_first_of_repeated_headers():
    [frame] = parse(b"MESSAGE\nfoo:1\nfoo:2\n\n\0")
    assert frame is not None
    assert frame.headers == (("foo", "1"), ("foo", "2"))
    assert frame.header("foo") == "1"
    assert frame.header("bar", "dflt") == "dflt"


def test_it_accepts_crlf_line_ends_in_1_2():
    [frame] = parse(b"SEND\r\ndestination:/a\r\n\r\nbody\0", "1.2")
    assert frame == Frame("SEND", (("destination", "/a"),), b"body")


def test_a_trailing_carriage_return_is_header_data_in_1_1():
    [frame] = parse(b"SEND\ndestination:/a\r\n\n\0", "1.1")
    assert frame is not None
    assert frame.header("destination") == "/a\r"


def test_it_accepts_text_chunks_as_utf8():
    [frame] = FrameParser().feed("SEND\ndestination:/salle-é\n\nçà\0")
    assert frame == Frame("SEND", (("destination", "/salle-é"),), "çà".encode())


def test_it_rejects_text_chunks_with_lone_surrogates_as_a_protocol_error():
    with pytest.raises(StompProtocolError, match="UTF-8"):
        FrameParser().feed("SEND\na:\ud800\n\n\0")


def test_it_decodes_escapes_according_to_a_version_set_after_connect():
    parser = FrameParser()
    parser.version = "1.1"
    with pytest.raises(StompProtocolError, match="escape"):
        parser.feed(b"SEND\na:\\r\n\n\0")


def test_it_reassembles_a_frame_split_at_every_byte():
    frame = send(b'{"text":"split me"}', ("receipt", "r:1\n"))
    raw = encode(frame)
    expected = [Frame("SEND", (*frame.headers, ("content-length", "19")), frame.body)]
    for cut in range(len(raw) + 1):
        assert parse(raw, chunks=[cut]) == expected, cut


def test_it_reassembles_a_frame_without_content_length_split_at_every_byte():
    raw = b"SEND\r\ndestination:/a\r\n\r\nno length\0\r\n"
    expected = [Frame("SEND", (("destination", "/a"),), b"no length"), None]
    for cut in range(len(raw) + 1):
        assert parse(raw, chunks=[cut]) == expected, cut


def test_it_reassembles_a_frame_fed_one_byte_at_a_time():
    raw = encode(send(b"x" * 300, ("a", "b\\c")))
    assert parse(raw, chunks=list(range(1, len(raw)))) == parse(raw)


def test_it_reassembles_a_large_send_split_like_stompjs_into_16k_messages():
    body = bytes(range(256)).replace(b"\0", b"") * 160
    for raw in (encode(send(body)), b"SEND\ndestination:/a\n\n" + body + b"\0"):
        [frame] = parse(raw, chunks=list(range(16 * 1024, len(raw), 16 * 1024)))
        assert frame is not None
        assert frame.body == body


def test_it_returns_several_frames_from_one_chunk_in_order():
    raw = encode(send(b"1")) + encode(send(b"2")) + b"DISCONNECT\n\n\0"
    frames = parse(raw)
    assert [f.body if f else None for f in frames] == [b"1", b"2", b""]
    assert frames[-1] == Frame("DISCONNECT")


def test_it_reports_lf_and_crlf_heart_beats_interleaved_with_frames():
    raw = b"\n" + encode(send(b"1")) + b"\r\n\n" + encode(send(b"2")) + b"\n\r\n"
    assert [f.body if f else f for f in parse(raw)] == [None, b"1", None, None, b"2", None, None]


def test_a_crlf_heart_beat_split_across_chunks_counts_once():
    parser = FrameParser()
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n") == [None]


def test_it_reads_a_content_length_body_that_contains_nul():
    [frame] = parse(b"SEND\ndestination:/a\ncontent-length:5\n\na\0b\0c\0")
    assert frame is not None
    assert frame.body == b"a\0b\0c"


def test_it_uses_the_first_content_length_header():
    [frame] = parse(b"SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0")
    assert frame is not None
    assert frame.body == b"a\0b"


# --- malformed input ------------------------------------------------------------------------------


def rejects(data: bytes, match: str, version: str = "1.2", **kwargs) -> None:
    with pytest.raises(StompProtocolError, match=match):
        parse(data, version, **kwargs)


def test_it_rejects_a_content_length_body_not_followed_by_nul():
    rejects(b"SEND\ncontent-length:2\n\nabc\0", "not followed by NUL")


@pytest.mark.parametrize("value", ["-1", "abc", "", "1.5", " 3", "\u0663", "9" * 40])
def test_it_rejects_a_negative_or_non_numeric_content_length(value):
    rejects(f"SEND\ncontent-length:{value}\n\n\0".encode(), "content-length")


def test_it_rejects_a_content_length_beyond_the_limit_before_the_body_arrives():
    rejects(b"SEND\ncontent-length:1000\n\n", "maximum size", max_frame_bytes=512)


def test_it_rejects_an_oversized_frame_even_when_it_is_terminated():
    rejects(b"SEND\n\n" + b"x" * 600 + b"\0", "maximum size", max_frame_bytes=512)
    rejects(encode(send(b"x" * 600)), "maximum size", max_frame_bytes=512)


def test_it_accepts_a_frame_of_exactly_the_limit():
    raw = b"SEND\n\n" + b"x" * 506 + b"\0"
    assert len(parse(raw, max_frame_bytes=512)) == 1


@pytest.mark.parametrize("prefix", [b"SEND\n\n", b"SEND\ndestination:/"], ids=["body", "headers"])
def test_it_rejects_a_frame_whose_nul_never_comes_without_buffering_it_all(prefix):
    parser = FrameParser(max_frame_bytes=4096)
    parser.feed(prefix)
    fed = len(prefix)
    with pytest.raises(StompProtocolError, match="maximum size"):  # noqa: PT012 - the loop is the point
        while fed < 10 * 4096:
            parser.feed(b"x" * 100)
            fed += 100
    assert fed <= 4096 + 100


def test_the_default_limit_is_64_kib():
    rejects(b"SEND\n\n" + b"x" * MAX_FRAME_BYTES, "maximum size")


def test_it_accepts_max_headers_but_rejects_one_more():
    lines = b"".join(b"h%d:v\n" % i for i in range(MAX_HEADERS))
    assert len(parse(b"SEND\n" + lines + b"\n\0")) == 1
    rejects(b"SEND\n" + lines + b"extra:v\n\n\0", "headers")


@pytest.mark.parametrize(
    ("version", "header"),
    [("1.2", b"a:\\t"), ("1.2", b"a:trailing\\"), ("1.1", b"a:\\r"), ("1.2", b"a\\x:b")],
)
def test_it_rejects_an_undefined_escape_sequence(version, header):
    rejects(b"SEND\n" + header + b"\n\n\0", "escape", version)


@pytest.mark.parametrize("command", [b"FOO", b"send", b"SEND ", b"\rSEND", b"destination:/a"])
def test_it_rejects_an_unknown_command(command):
    rejects(command + b"\n\n\0", "unknown command")


@pytest.mark.parametrize("raw", [b"SE\xffND\n\n\0", b"SEND\nde\xc3st:x\n\n\0", b"SEND\na:\xed\xa0\x80\n\n\0"])
def test_it_rejects_invalid_utf8_in_command_or_headers(raw):
    rejects(raw, "UTF-8")


def test_it_rejects_a_header_line_without_colon():
    rejects(b"SEND\nnocolon\n\n\0", "no ':'")


def test_it_rejects_nul_before_the_blank_line():
    rejects(b"SEND\ndestination:/a\0", "blank line")


def test_it_rejects_a_stray_nul_between_frames():
    rejects(encode(send()) + b"\n\0", "blank line")


def test_it_stays_failed_after_an_error():
    parser = FrameParser()
    with pytest.raises(StompProtocolError):
        parser.feed(b"BOGUS\n\n\0")
    with pytest.raises(StompProtocolError, match="unknown command"):
        parser.feed(encode(send()))


def test_it_rejects_an_unknown_version():
    with pytest.raises(ValueError, match="version"):
        FrameParser(version="1.3")


# --- negotiation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "1.0"),
        ("", "1.0"),
        ("1.0", "1.0"),
        ("1.1,1.0", "1.1"),
        ("1.0, 1.1 ,1.2", "1.2"),
        ("1.2,2.0", "1.2"),
        ("2.0", None),
        ("garbage", None),
    ],
)
def test_it_negotiates_the_highest_common_version(accept, expected):
    assert negotiate_version(accept) == expected


@pytest.mark.parametrize(
    ("client", "server", "expected"),
    [
        (None, (10_000, 10_000), (0, 0)),
        ("0,0", (10_000, 10_000), (0, 0)),
        ("10000,10000", (0, 0), (0, 0)),
        ("10000,10000", (5_000, 20_000), (10_000, 20_000)),
        ("1000,0", (5_000, 5_000), (0, 5_000)),
        ("0,1000", (5_000, 5_000), (5_000, 0)),
        (" 500 , 60000 ", (5_000, 5_000), (60_000, 5_000)),
    ],
)
def test_it_negotiates_heart_beats_per_stomp_1_1(client, server, expected):
    assert negotiate_heartbeat(client, *server) == expected


@pytest.mark.parametrize("client", ["", "10", "1,2,3", "-1,0", "a,b", "1.5,2", "9999999999,1"])
def test_it_rejects_a_malformed_heart_beat_header(client):
    with pytest.raises(StompProtocolError, match="heart-beat"):
        negotiate_heartbeat(client, 10_000, 10_000)


def test_it_negotiates_a_session_for_the_stompjs_2_3_3_connect_frame():
    parser = FrameParser()
    [connect] = parser.feed(STOMPJS_CONNECT)
    assert connect is not None
    version = negotiate_version(connect.header("accept-version"))
    assert version == "1.1"
    assert negotiate_heartbeat(connect.header("heart-beat"), 10_000, 10_000) == (10_000, 10_000)
    parser.version = version
    [frame, beat] = parser.feed(b"SEND\ndestination:/app/a\\cb\ncontent-length:2\n\nhi\0\n")
    assert frame == Frame("SEND", (("destination", "/app/a:b"), ("content-length", "2")), b"hi")
    assert beat is None


# --- properties -----------------------------------------------------------------------------------


@st.composite
def chunked(draw, data: bytes) -> tuple[bytes, list[int]]:
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=8))
    return data, sorted(cuts)


_TOKENS = [b"SEND", b"CONNECT", b"MESSAGE", b"\n", b"\r\n", b"\r", b":", b"\\", b"\\n", b"\\c", b"\0", b"a"]
_TOKENS += [b"content-length:", b"3", b"-1", b"\xff", b"\xc3", b"\n\n", b"\n\r\n", b"x" * 70]
_stomp_soup = st.lists(st.sampled_from(_TOKENS) | st.binary(max_size=8), max_size=40).map(b"".join)


@settings(max_examples=400)
@given(data=st.data(), version=st.sampled_from(VERSIONS), raw=st.binary(max_size=300) | _stomp_soup)
def test_arbitrary_bytes_in_any_chunking_raise_only_protocol_errors(data, version, raw):
    raw, cuts = data.draw(chunked(raw))
    try:
        frames = parse(raw, version, chunks=cuts, max_frame_bytes=256)
    except StompProtocolError:
        return
    assert all(frame is None or isinstance(frame, Frame) for frame in frames)


_text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
_plain_name = st.text(st.characters(codec="utf-8", exclude_characters="\0\r\n:"), max_size=12)
_plain_value = st.text(st.characters(codec="utf-8", exclude_characters="\0\r\n"), max_size=12)


@st.composite
def frames(draw) -> tuple[str, Frame]:
    version = draw(st.sampled_from(VERSIONS))
    command = draw(st.sampled_from(["SEND", "MESSAGE", "SUBSCRIBE", "ERROR", "CONNECT", "CONNECTED"]))
    raw_headers = version == "1.0" or command in ("CONNECT", "CONNECTED")
    names, values = (_plain_name, _plain_value) if raw_headers else (_text, _text)
    names = names.filter(lambda name: name != "content-length")
    headers = draw(st.lists(st.tuples(names, values), max_size=10))
    body = draw(st.binary(max_size=64))
    return version, Frame(command, tuple(headers), body)


@settings(max_examples=300)
@given(data=st.data(), case=frames())
def test_an_encoded_frame_parses_back_to_itself_in_any_chunking(data, case):
    version, frame = case
    raw, cuts = data.draw(chunked(encode(frame, version)))
    expected_headers = frame.headers + ((("content-length", str(len(frame.body))),) if frame.body else ())
    assert parse(raw, version, chunks=cuts) == [Frame(frame.command, expected_headers, frame.body)]
