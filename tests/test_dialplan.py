"""The FreeSWITCH files we ship: they parse, every call ends somewhere, and they speak fsrouter's contract."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fsrouter.adapters.esl_translate import AGENT_CONTROL_SUBCLASS
from fsrouter.core.conditions import IVR_VARIABLE
from fsrouter.core.events import AGENT_ACTIONS

DIALPLAN = Path(__file__).resolve().parent.parent / "dialplan"
FEATURE_CODES = {"*51": "login", "*52": "logout", "*53": "break", "*54": "ready"}
#: variables only fsrouter may set, on the legs it originates
AGENT_LEG_TAGS = ("fsrouter_leg", "fsrouter_call")


def extensions() -> list[ET.Element]:
    root = ET.parse(DIALPLAN / "fsrouter.xml").getroot()
    assert root.tag == "include"  # conf/dialplan/default/*.xml files are <include>d into a context
    return root.findall("extension")


def actions(extension: ET.Element, kind: str = "action") -> list[tuple[str, str]]:
    """(application, data) in the order FreeSWITCH runs them when every condition matches."""
    return [
        (action.get("application", ""), action.get("data", ""))
        for condition in extension.findall("condition")
        for action in condition.findall(kind)
    ]


def set_variables(extension: ET.Element) -> dict[str, str]:
    return dict(data.split("=", 1) for app, data in actions(extension) if app in ("set", "export"))


def event_headers(data: str) -> dict[str, str]:
    """Split the `event` application's data as mod_dptools does: comma-separated NAME=VALUE pairs."""
    return {name.strip(): value.strip() for name, _, value in (pair.partition("=") for pair in data.split(","))}


def destination(extension: ET.Element) -> str:
    """The number an extension answers to, from its ``^…$`` destination_number expression."""
    condition = next(c for c in extension.findall("condition") if c.get("field") == "destination_number")
    return re.sub(r"\\(.)", r"\1", condition.get("expression", "").strip("^$"))


def feature_code_extensions() -> list[ET.Element]:
    return [extension for extension in extensions() if destination(extension).startswith("*")]


def call_extensions() -> list[ET.Element]:
    return [extension for extension in extensions() if not destination(extension).startswith("*")]


def test_extension_names_and_numbers_are_unique() -> None:
    names = [extension.get("name") for extension in extensions()]
    numbers = [destination(extension) for extension in extensions()]
    assert len(set(names)) == len(names)
    assert len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("extension", extensions(), ids=lambda extension: extension.get("name"))
def test_every_extension_ends_in_park_or_hangup(extension: ET.Element) -> None:
    """A call that falls off the end of an extension would go on to the next ones (or to enum)."""
    assert actions(extension)[-1][0] in ("park", "hangup")
    anti_actions = actions(extension, "anti-action")
    if anti_actions:
        assert anti_actions[-1][0] == "hangup"


@pytest.mark.parametrize("extension", call_extensions(), ids=lambda extension: extension.get("name"))
def test_calls_are_marked_for_fsrouter_before_they_are_parked(extension: ET.Element) -> None:
    assert actions(extension)[-1] == ("park", "")
    variables = set_variables(extension)
    assert "fsrouter_queue" in variables or variables.get("fsrouter") in ("true", "yes", "on", "1")
    if "fsrouter_priority" in variables:
        assert variables["fsrouter_priority"].lstrip("-").isdigit()
    if "fsrouter_skills" in variables:
        assert re.fullmatch(r"\w+(:\d+)?(,\w+(:\d+)?)*", variables["fsrouter_skills"])


def test_the_examples_cover_every_variable_fsrouter_reads() -> None:
    variables = {name for extension in call_extensions() for name in set_variables(extension)}
    assert {"fsrouter_queue", "fsrouter", "fsrouter_priority", "fsrouter_skills", "fsrouter_lang"} <= variables


def test_the_ivr_stores_the_choice_where_the_rules_read_it() -> None:
    ivr = next(extension for extension in call_extensions() if set_variables(extension).get("fsrouter") == "true")
    collect = next(data for app, data in actions(ivr) if app == "play_and_get_digits")
    assert collect.split()[7] == IVR_VARIABLE  # min max tries timeout terminators file invalid_file VAR regexp


def test_nothing_in_the_dialplan_touches_the_agent_leg_tags() -> None:
    text = (DIALPLAN / "fsrouter.xml").read_text()
    for tag in AGENT_LEG_TAGS:
        assert not re.search(rf"data=\"[^\"]*\b{tag}=", text), f"the dialplan must never set {tag}"


def test_each_feature_code_fires_its_agent_action() -> None:
    fired = {}
    for extension in feature_code_extensions():
        events = [event_headers(data) for app, data in actions(extension) if app == "event"]
        assert len(events) == 1
        headers = events[0]
        assert headers["Event-Name"] == "CUSTOM"
        assert headers["Event-Subclass"] == AGENT_CONTROL_SUBCLASS
        assert headers["Action"] in AGENT_ACTIONS
        # the agent is the SIP user the phone authenticated as, never the caller id it claims
        assert headers["Agent"] == "agent-${user_name}"
        fired[destination(extension)] = headers["Action"]
    assert fired == FEATURE_CODES


@pytest.mark.parametrize("extension", feature_code_extensions(), ids=lambda extension: extension.get("name"))
def test_feature_codes_confirm_with_a_tone_and_refuse_unauthenticated_callers(extension: ET.Element) -> None:
    applications = [app for app, _data in actions(extension)]
    assert applications == ["event", "answer", "playback", "hangup"]
    tone = next(data for app, data in actions(extension) if app == "playback")
    assert tone.startswith("tone_stream://")
    authenticated = [c for c in extension.findall("condition") if c.get("field") == "${user_name}"]
    assert [c.get("expression") for c in authenticated] == ["^.+$"]
    assert actions(extension, "anti-action") == [("hangup", "CALL_REJECTED")]


def test_event_socket_listens_on_loopback_behind_an_acl() -> None:
    root = ET.parse(DIALPLAN / "event_socket.conf.xml").getroot()
    assert root.get("name") == "event_socket.conf"
    params = {param.get("name"): param.get("value") for param in root.iter("param")}
    assert params["listen-ip"] == "127.0.0.1"
    assert params["listen-port"] == "8021"
    assert params["apply-inbound-acl"] == "loopback.auto"
    assert params["password"] not in ("", "ClueCon"), "the example must not teach FreeSWITCH's default password"
