"""Event reading cost: fsrouter's plain-event parsing and translation against bare greenswitch's parsing.

The event bodies of every real capture in ``tests/fixtures/esl/plain/*.raw`` (both sides get the same
``str`` bodies; reading the outer frame headers is greenswitch's on both and is left out). Each round
reads all of them once, either with ``parse_plain_event`` + ``translate_or_malformed`` (what ``EslNode``
does per event) or with greenswitch's ``ESLEvent.parse_data`` (what a bare greenswitch client does);
the two alternate, so both see the same machine load. A ratio of 1.0 or more means fsrouter reads
events at least as fast as greenswitch alone, translation included.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from greenswitch.esl import ESLEvent

from fsrouter.adapters.esl import parse_plain_event
from fsrouter.adapters.esl_translate import translate_or_malformed

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "esl" / "plain"
ROUNDS = 7
EVENTS_PER_ROUND = 10_000


def event_bodies(directory: Path = CAPTURES) -> list[str]:
    """The text/event-plain bodies of every capture in ``directory``, in file order."""
    bodies: list[str] = []
    for path in sorted(directory.glob("*.raw")):
        stream = path.read_bytes()
        position = 0
        while (end := stream.find(b"\n\n", position)) != -1:
            outer = ESLEvent(stream[position:end].decode()).headers
            position = end + 2 + int(outer.get("Content-Length", "0"))
            if outer.get("Content-Type") == "text/event-plain":
                bodies.append(stream[end + 2 : position].decode("utf-8", errors="replace"))
    return bodies


def fsrouter_read(body: str) -> object:
    headers, inner = parse_plain_event(body)
    return translate_or_malformed(headers, inner, "bench")


def greenswitch_read(body: str) -> object:
    event = ESLEvent("")
    event.parse_data(body)
    return event


def events_per_second(read: Callable[[str], object], bodies: list[str]) -> float:
    """Events per second of ``read`` over ``bodies`` (one pass)."""
    start = time.perf_counter()
    for body in bodies:
        read(body)
    return len(bodies) / (time.perf_counter() - start)


def main() -> None:
    captured = event_bodies()
    bodies = (captured * (EVENTS_PER_ROUND // len(captured) + 1))[:EVENTS_PER_ROUND]
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(ROUNDS):
        ours.append(events_per_second(fsrouter_read, bodies))
        bare.append(events_per_second(greenswitch_read, bodies))
    print(f"{len(captured)} captured event bodies, {ROUNDS} alternated rounds of {len(bodies)} events")
    for name, rates in (("fsrouter parse + translate", ours), ("bare greenswitch parse", bare)):
        spread = f"(min {min(rates):.0f}, max {max(rates):.0f})"
        print(f"  {name:27}: median {statistics.median(rates):8.0f} events/s {spread}")
    ratios = [mine / theirs for mine, theirs in zip(ours, bare, strict=True)]
    print(f"  fsrouter / greenswitch     : median {statistics.median(ratios):8.2f}x (goal >= 1.0)")


if __name__ == "__main__":
    main()
