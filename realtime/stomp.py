"""STOMP 1.0/1.1/1.2 frame codec: encode frames, parse a byte stream incrementally, negotiate a session.

Pure and I/O-free so the WebSocket consumer owns the connection and this module owns the wire format.
The parser never trusts the peer: every frame is bounded while it is still being buffered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_FRAME_BYTES = 64 * 1024
MAX_HEADERS = 64

VERSIONS = ("1.0", "1.1", "1.2")
CLIENT_COMMANDS = frozenset(
    {"CONNECT", "STOMP", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN", "COMMIT", "ABORT", "DISCONNECT"}
)
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})
COMMANDS = CLIENT_COMMANDS | SERVER_COMMANDS
# The spec exempts these from escaping so a 1.0 peer can still read the handshake.
_UNESCAPED_COMMANDS = frozenset({"CONNECT", "CONNECTED"})

_LF = 0x0A
_CR = 0x0D
_ESCAPE_SEQUENCE = re.compile(r"\\(.?)", re.DOTALL)
_UNESCAPES = {
    "1.1": {"n": "\n", "c": ":", "\\": "\\"},
    "1.2": {"n": "\n", "c": ":", "\\": "\\", "r": "\r"},
}
_HEART_BEAT = re.compile(r"\s*([0-9]{1,9})\s*,\s*([0-9]{1,9})\s*", re.ASCII)
# Longer than any sane frame size; keeps int() away from huge digit strings.
_MAX_LENGTH_DIGITS = 12


class StompProtocolError(Exception):
    """Malformed or oversized STOMP input; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One STOMP frame; headers keep wire order and may repeat a name."""

    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of a header, as the spec says repeated headers resolve."""
        for key, value in self.headers:
            if key == name:
                return value
        return default


def _escape_11(text: str) -> str:
    """Escape a 1.1 header name or value."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if ":" in text:
        text = text.replace(":", "\\c")
    if "\0" in text:
        text = text.replace("\0", "")
    return text


def _escape_12(text: str) -> str:
    """Escape a 1.2 header name or value."""
    text = _escape_11(text)
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _raw_value(text: str) -> str:
    """Make an unescaped header value unable to break the line structure."""
    if "\n" in text or "\r" in text:
        text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    if "\0" in text:
        text = text.replace("\0", "")
    return text


def _raw_name(text: str) -> str:
    """Make an unescaped header name unable to break the line or the name:value split."""
    for char in "\r\n:\0":
        if char in text:
            text = text.replace(char, "")
    return text


_ESCAPERS: dict[str, Callable[[str], str]] = {"1.0": _raw_value, "1.1": _escape_11, "1.2": _escape_12}


def _escapers(version: str, command: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """Pick the (name, value) escapers for a frame."""
    escape = _ESCAPERS.get(version)
    if escape is None:
        raise ValueError(f"unsupported STOMP version {version!r}")
    if version == "1.0" or command in _UNESCAPED_COMMANDS:
        return _raw_name, _raw_value
    return escape, escape


def encode(frame: Frame, version: str = "1.2") -> bytes:
    """Serialise a frame for the given protocol version."""
    # Headers may echo JSON-decoded text, which can hold lone surrogates; "?" beats a crash mid-fan-out.
    escape_name, escape_value = _escapers(version, frame.command)
    lines = [frame.command]
    has_length = False
    for name, value in frame.headers:
        if name == "content-length":
            has_length = True
        lines.append(f"{escape_name(name)}:{escape_value(value)}")
    if frame.body and not has_length:
        # Always framing by length lets bodies carry NUL bytes.
        lines.append(f"content-length:{len(frame.body)}")
    lines.append("\n")
    return b"".join(("\n".join(lines).encode(errors="replace"), frame.body, b"\0"))


def encode_message(
    destination: str,
    subscription: str,
    message_id: str,
    body: bytes,
    version: str,
    content_type: str = "application/json",
) -> bytes:
    """Serialise a MESSAGE frame directly, byte-identical to encode() of the same headers: its
    head, its message-id and its tail (see message_head and message_tail)."""
    head = message_head(destination, subscription, version, content_type)
    return b"".join((head, _ESCAPERS[version](message_id).encode(errors="replace"), message_tail(body)))


def message_head(destination: str, subscription: str, version: str, content_type: str = "application/json") -> bytes:
    """A MESSAGE frame up to its message-id's value: the same for every frame of a subscription."""
    escape = _ESCAPERS.get(version)
    if escape is None:
        raise ValueError(f"unsupported STOMP version {version!r}")
    return (
        f"MESSAGE\ndestination:{escape(destination)}\ncontent-type:{escape(content_type)}"
        f"\nsubscription:{escape(subscription)}\nmessage-id:"
    ).encode(errors="replace")


def message_tail(body: bytes) -> bytes:
    """A MESSAGE frame from the end of its message-id: the same for every frame of one body."""
    length = b"\ncontent-length:%d" % len(body) if body else b""
    return b"".join((length, b"\n\n", body, b"\0"))


def _unescape(text: str, table: dict[str, str]) -> str:
    """Decode 1.1/1.2 header escapes, rejecting any the version does not define."""
    if "\\" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        try:
            return table[match.group(1)]
        except KeyError:
            raise StompProtocolError(f"invalid escape sequence {match.group(0)!r} in header") from None

    return _ESCAPE_SEQUENCE.sub(replace, text)


def _parse_content_length(value: str, budget: int) -> int:
    """Read a content-length header that must fit in the remaining frame budget."""
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_LENGTH_DIGITS:
        raise StompProtocolError("content-length must be a non-negative integer")
    length = int(value)
    if length > budget:
        raise StompProtocolError("frame exceeds the maximum size")
    return length


class FrameParser:
    """Turn a stream of byte chunks into frames, whatever the chunk boundaries."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES, version: str = "1.2") -> None:
        self.max_frame_bytes = max_frame_bytes
        self.version = version
        # Holds the current frame from its command (or, once headers are parsed, from its body) on.
        self._buf = bytearray()
        # Bytes of the current region already searched, so split input is not rescanned.
        self._scanned = 0
        self._head: tuple[str, tuple[tuple[str, str], ...], int | None] | None = None
        self._budget = 0
        self._failure: StompProtocolError | None = None

    @property
    def version(self) -> str:
        """Return the protocol version used to decode header escapes."""
        return self._version

    @version.setter
    def version(self, value: str) -> None:
        if value not in VERSIONS:
            raise ValueError(f"unsupported STOMP version {value!r}")
        self._version = value

    def feed(self, data: bytes | str) -> list[Frame | None]:
        """Consume a chunk; return the frames it completed, with None for each heart-beat."""
        if self._failure is not None:
            raise StompProtocolError(str(self._failure))
        try:
            # surrogatepass defers bad text to the UTF-8 check below, so it surfaces as a protocol error.
            return self._feed(data.encode(errors="surrogatepass") if isinstance(data, str) else data)
        except StompProtocolError as error:
            self._failure = error
            self._buf = bytearray()
            raise

    def _feed(self, data: bytes) -> list[Frame | None]:
        """Do the work of feed() without the failure bookkeeping."""
        buf = self._buf
        buf += data
        size = len(buf)
        pos = 0
        out: list[Frame | None] = []
        while pos < size:
            if self._head is None:
                first = buf[pos]
                if first == _LF:
                    out.append(None)
                    pos += 1
                    continue
                if first == _CR:
                    if pos + 1 == size:
                        break
                    if buf[pos + 1] == _LF:
                        out.append(None)
                        pos += 2
                        continue
                body_start = self._read_head(buf, pos, size)
                if body_start < 0:
                    break
                pos = body_start
            frame_end = self._read_body(buf, pos, size, out)
            if frame_end < 0:
                break
            pos = frame_end
        if pos:
            del buf[:pos]
        return out

    def _read_head(self, buf: bytearray, pos: int, size: int) -> int:
        """Parse the command and headers starting at pos; return the body offset, or -1 to wait."""
        start = max(pos, pos + self._scanned - 2)
        end = buf.find(b"\n\n", start)
        # A 1.2 blank line may be CRLF; only an earlier match matters.
        crlf = buf.find(b"\n\r\n", start, end + 2 if end >= 0 else size)
        if crlf >= 0:
            end, separator = crlf, 3
        else:
            separator = 2
        if buf.find(b"\0", start, end if end >= 0 else size) >= 0:
            raise StompProtocolError("frame headers must end with a blank line")
        if end < 0:
            if size - pos > self.max_frame_bytes:
                raise StompProtocolError("frame exceeds the maximum size")
            self._scanned = size - pos
            return -1
        body_start = end + separator
        head_size = body_start - pos
        if head_size > self.max_frame_bytes:
            raise StompProtocolError("frame exceeds the maximum size")
        self._budget = self.max_frame_bytes - head_size
        self._head = self._parse_head(bytes(buf[pos:end]))
        self._scanned = 0
        return body_start

    def _parse_head(self, block: bytes) -> tuple[str, tuple[tuple[str, str], ...], int | None]:
        """Decode the command line and header lines of one frame."""
        try:
            text = block.decode()
        except UnicodeDecodeError:
            raise StompProtocolError("frame headers are not valid UTF-8") from None
        lines = text.split("\n")
        command = lines[0].removesuffix("\r")
        if command not in COMMANDS:
            raise StompProtocolError(f"unknown command {command[:32]!r}")
        if len(lines) - 1 > MAX_HEADERS:
            raise StompProtocolError(f"frame has more than {MAX_HEADERS} headers")
        table = None if command in _UNESCAPED_COMMANDS else _UNESCAPES.get(self._version)
        # CRLF line ends are 1.2; 1.1 escapes no \r, so there a trailing \r is header data.
        strip_cr = self._version != "1.1" or command in _UNESCAPED_COMMANDS
        headers = []
        length: int | None = None
        for line in lines[1:]:
            if strip_cr and line.endswith("\r"):
                line = line[:-1]
            name, colon, value = line.partition(":")
            if not colon:
                raise StompProtocolError("header line has no ':'")
            if table is not None:
                name = _unescape(name, table)
                value = _unescape(value, table)
            if name == "content-length" and length is None:
                length = _parse_content_length(value, self._budget)
            headers.append((name, value))
        return command, tuple(headers), length

    def _read_body(self, buf: bytearray, pos: int, size: int, out: list[Frame | None]) -> int:
        """Finish the frame whose body starts at pos; return the offset after its NUL, or -1 to wait."""
        assert self._head is not None
        command, headers, length = self._head
        if length is not None:
            if size - pos <= length:
                return -1
            if buf[pos + length] != 0:
                raise StompProtocolError("frame body is not followed by NUL")
            end = pos + length
        else:
            end = buf.find(b"\0", pos + self._scanned)
            if end < 0:
                if size - pos > self._budget:
                    raise StompProtocolError("frame exceeds the maximum size")
                self._scanned = size - pos
                return -1
            if end - pos > self._budget:
                raise StompProtocolError("frame exceeds the maximum size")
        out.append(Frame(command, headers, bytes(buf[pos:end])))
        self._head = None
        self._scanned = 0
        return end + 1


def negotiate_version(accept_version: str | None) -> str | None:
    """Pick the highest version both sides speak; a client without accept-version speaks 1.0."""
    if accept_version is None or not accept_version.strip():
        return "1.0"
    offered = {part.strip() for part in accept_version.split(",")}
    common = [version for version in VERSIONS if version in offered]
    return common[-1] if common else None


def negotiate_heartbeat(client: str | None, server_cx: int, server_cy: int) -> tuple[int, int]:
    """Return (server sends every ms, server expects every ms) from the client's heart-beat header."""
    if client is None:
        return 0, 0
    match = _HEART_BEAT.fullmatch(client)
    if match is None:
        raise StompProtocolError("heart-beat header must be two comma-separated integers")
    cx, cy = int(match.group(1)), int(match.group(2))
    send = 0 if cy == 0 or server_cx == 0 else max(server_cx, cy)
    expect = 0 if cx == 0 or server_cy == 0 else max(server_cy, cx)
    return send, expect


def error_frame(
    message: str, *, receipt_id: str | None = None, details: str = "", subscription: str | None = None
) -> Frame:
    """Build an ERROR frame carrying a short message header and a plain-text body; with
    `subscription`, the ERROR ends that subscription alone."""
    headers = [("message", message), ("content-type", "text/plain")]
    if receipt_id is not None:
        headers.append(("receipt-id", receipt_id))
    if subscription is not None:
        headers.append(("subscription", subscription))
    return Frame("ERROR", tuple(headers), details.encode())
