"""Which text FreeSWITCH reads back exactly as written once it is put on an event-socket command line.

fsrouter writes values from the rules file (an agent's ``endpoint``, a queue's ``moh``, ``timeout_destination``,
an announcement) and from FreeSWITCH itself (uuids) into ``api``/``bgapi`` command lines. FreeSWITCH reads
such a line in passes, and a value that one pass misreads becomes something else:

- the event socket ends a command at a blank line (``mod_event_socket``: headers up to ``\\n\\n``), so a line
  break in a value ends our command and starts one of the value's choosing (``\\n\\napi fsctl shutdown``);
- api arguments are split on spaces, with quotes and backslashes taken as quoting
  (``switch_separate_string``), so a space or a quote moves every later argument; an argument starting with
  ``-`` is read as an option by ``uuid_transfer`` (``-bleg``, ``-both``);
- ``originate`` reads ``{...}``, ``[...]`` and ``<...>`` as channel-variable blocks and ``,``, ``|`` and
  ``:_:`` as separators between several legs (``switch_ivr_originate.c``): in an endpoint they would set
  our own variables (``origination_uuid``) or ring legs fsrouter does not track;
- an ``inline`` dialplan (``uuid_transfer <uuid> 'playback:x,hangup' inline``) separates its applications
  with ``,``, so a comma in an announcement runs an application of the value's choosing.

``unsafe_reason`` says why a value cannot go into one of these places: the rules loader reports it as a
``PATH:LINE: error`` and the ESL adapter (``adapters/esl_translate.encode``) refuses a command holding one,
whatever its origin. Pure: no I/O.

    >>> unsafe_reason("user/1001 &park()", Slot.DIAL_STRING)
    'contains a space (FreeSWITCH splits a command line on spaces)'
    >>> unsafe_reason("user/1001@example.com", Slot.DIAL_STRING) is None
    True
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

__all__ = ["Slot", "unsafe_reason"]


class Slot(StrEnum):
    """Where on a command line a value goes; each slot refuses more than the one before."""

    #: one argument of an api command: a uuid, a music-on-hold source, an extension, a dialplan, a context
    ARGUMENT = "argument"
    #: the argument of an application in an ``inline`` dialplan (an announcement): also no ``,``
    INLINE_ARGUMENT = "inline-argument"
    #: the endpoint of an ``originate`` (``user/1000``, ``sofia/gateway/gw/+33612345678``): also no variable
    #: blocks and no multi-leg separators
    DIAL_STRING = "dial-string"


#: characters refused in every slot (beyond control characters and white space), with why
_ARGUMENT_CHARACTERS = {
    "'": "a quote (FreeSWITCH takes quotes as quoting when it splits a command line)",
    '"': "a quote (FreeSWITCH takes quotes as quoting when it splits a command line)",
    "\\": "a backslash (FreeSWITCH takes it as an escape when it splits a command line)",
    "{": "a '{' (FreeSWITCH reads {...} as a channel-variable block)",
    "}": "a '}' (FreeSWITCH reads {...} as a channel-variable block)",
    "[": "a '[' (FreeSWITCH reads [...] as a channel-variable block)",
    "]": "a ']' (FreeSWITCH reads [...] as a channel-variable block)",
}
_INLINE_CHARACTERS = {
    **_ARGUMENT_CHARACTERS,
    ",": "a ',' (an inline dialplan separates its applications with commas)",
}
_DIAL_STRING_CHARACTERS = {
    **_ARGUMENT_CHARACTERS,
    "<": "a '<' (FreeSWITCH reads <...> as a channel-variable block)",
    ">": "a '>' (FreeSWITCH reads <...> as a channel-variable block)",
    ",": "a ',' (it would ring several legs at once; fsrouter tracks one leg per offer)",
    "|": "a '|' (it would ring several legs in turn; fsrouter tracks one leg per offer)",
}
_REFUSED = {
    Slot.ARGUMENT: _ARGUMENT_CHARACTERS,
    Slot.INLINE_ARGUMENT: _INLINE_CHARACTERS,
    Slot.DIAL_STRING: _DIAL_STRING_CHARACTERS,
}
#: the text each slot takes, as one regular expression (control characters are Unicode category Cc)
_SAFE = {
    slot: re.compile(r"[^\s\x00-\x1f\x7f-\x9f" + re.escape("".join(refused)) + "]*")
    for slot, refused in _REFUSED.items()
}


def unsafe_reason(text: str, slot: Slot) -> str | None:
    """Why ``text`` cannot be written into ``slot`` of a command line unchanged (``contains ...``), or None."""
    if not _SAFE[slot].fullmatch(text):
        return _refused_character(text, slot)
    if text.startswith("-"):
        return "starts with '-' (uuid_transfer reads -bleg, -both as options)"
    if slot is Slot.DIAL_STRING and ":_:" in text:
        return "contains ':_:' (it would ring several legs at once; fsrouter tracks one leg per offer)"
    return None


def _refused_character(text: str, slot: Slot) -> str:
    """The reason for the first character of ``text`` that ``_SAFE[slot]`` refuses (line breaks first)."""
    control = next((character for character in text if unicodedata.category(character) == "Cc"), None)
    if control is not None:
        return f"contains the control character U+{ord(control):04X} (a line break ends an ESL command)"
    for character in text:
        if character.isspace():
            return "contains a space (FreeSWITCH splits a command line on spaces)"
        if character in _REFUSED[slot]:
            return f"contains {_REFUSED[slot][character]}"
    raise AssertionError(f"{text!r} matches no refusal of slot {slot}")
