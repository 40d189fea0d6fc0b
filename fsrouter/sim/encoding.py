"""Byte-exact FreeSWITCH event-socket framing and value encoding.

Mirrors mod_event_socket / switch_event_serialize so that client parsers are tested against the real
wire format: header orders differ between frame kinds, lengths count bytes, values are URL-encoded
with FreeSWITCH's own rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

Header = tuple[str, str]

# SWITCH_URL_UNSAFE from switch_utils.h (\r and \n fall under "outside 0x20..0x7E", always escaped).

DISCONNECT_GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_SHUTDOWN = "The system is being shut down.\n"
AUTH_REQUEST = b"Content-Type: auth/request\n\n"


#: anything url_encode would change; most header values have none of it and are returned as they are
_NEEDS_ENCODING = re.compile(r'[^\x20-\x7e]|[ #%&+:;<=>?@\[\\\]^`{|}"]')
_UNSAFE_CHAR = re.compile(rb'%[0-9A-Fa-f]{2}|[^\x20-\x7e]|[ #%&+:;<=>?@\[\\\]^`{|}"]')


def url_encode(value: str) -> str:
    """Encode like switch_url_encode, including the quirk that an existing `%XX` is left alone."""
    if value == "":
        return "_undef_"
    if _NEEDS_ENCODING.search(value) is None:
        return value
    return _UNSAFE_CHAR.sub(_escape, value.encode("utf-8")).decode("ascii")


def _escape(match: re.Match[bytes]) -> bytes:
    text = match.group()
    return text if len(text) == 3 else b"%%%02X" % text[0]


def plain_payload(headers: Iterable[Header], body: str | None) -> bytes:
    """The text/event-plain body: encoded headers, then the inner Content-Length + body if any."""
    lines = "".join(f"{name}: {url_encode(value)}\n" for name, value in headers)
    if body is None:
        return (lines + "\n").encode("utf-8")
    encoded_body = body.encode("utf-8")
    return (lines + f"Content-Length: {len(encoded_body)}\n\n").encode("utf-8") + encoded_body


def json_payload(headers: Iterable[Header], body: str | None) -> bytes:
    """The text/event-json body: cJSON object in header order, duplicates kept, values unencoded strings."""
    members = [(name, value) for name, value in headers]
    if body is not None:
        members += [("Content-Length", str(len(body.encode("utf-8")))), ("_body", body)]
    text = ",".join(
        f"{json.dumps(name, ensure_ascii=False)}:{json.dumps(value, ensure_ascii=False)}" for name, value in members
    )
    return ("{" + text + "}").encode("utf-8")


_PAYLOAD_BUILDERS = {"plain": plain_payload, "json": json_payload}
_CONTENT_TYPES = {"plain": "text/event-plain", "json": "text/event-json"}


def event_frame(headers: Sequence[Header], body: str | None, event_format: str) -> bytes:
    """An event frame: Content-Length first, then Content-Type (FS's order for events)."""
    payload = _PAYLOAD_BUILDERS[event_format](headers, body)
    head = f"Content-Length: {len(payload)}\nContent-Type: {_CONTENT_TYPES[event_format]}\n\n"
    return head.encode("ascii") + payload


def command_reply(reply_text: str, extra_headers: Sequence[Header] = ()) -> bytes:
    extra = "".join(f"{name}: {value}\n" for name, value in extra_headers)
    return f"Content-Type: command/reply\nReply-Text: {reply_text}\n{extra}\n".encode()


def api_response(body: str) -> bytes:
    """An api/response frame: Content-Type first, then Content-Length (FS's order for api)."""
    encoded = body.encode("utf-8")
    return f"Content-Type: api/response\nContent-Length: {len(encoded)}\n\n".encode() + encoded


def disconnect_notice(text: str = DISCONNECT_GOODBYE) -> bytes:
    encoded = text.encode("utf-8")
    return f"Content-Type: text/disconnect-notice\nContent-Length: {len(encoded)}\n\n".encode() + encoded
