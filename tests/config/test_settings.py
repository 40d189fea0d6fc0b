"""Daemon settings refuse durations that cannot work, in one line (a tick of 0 or less would spin the ticker)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from fsrouter.config.settings import Settings
from fsrouter.errors import ConfigError


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("tick", -1, "--tick -1: expected a number of seconds > 0"),
        ("tick", 0, "--tick 0: expected a number of seconds > 0"),
        ("grace", -1.0, "--grace -1.0: expected a number of seconds >= 0"),
        ("command_timeout", -5.0, "--command-timeout -5.0: expected a number of seconds > 0"),
        ("bridge_timeout", 0.0, "--bridge-timeout 0.0: expected a number of seconds > 0"),
        ("reconcile_interval", -30.0, "--reconcile-interval -30.0: expected a number of seconds >= 0"),
        ("tick", float("nan"), "--tick nan: expected a number of seconds > 0"),
    ],
)
def test_a_duration_out_of_range_is_refused_in_one_line(setting: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(**{setting: value})  # type: ignore[arg-type]

    assert str(caught.value) == message


def test_zero_grace_and_zero_reconcile_interval_are_allowed() -> None:
    settings = Settings(grace=0.0, reconcile_interval=0.0)

    assert (settings.grace, settings.reconcile_interval) == (0.0, 0.0)


def test_the_default_instance_is_the_host_name_and_a_hash_of_the_absolute_db_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "pbx1.example.com")
    monkeypatch.chdir(tmp_path)

    instance = Settings(db="fsrouter.db").instance

    assert re.fullmatch(r"pbx1\.example\.com-[0-9a-f]{8}", instance)
    assert Settings(db=str(tmp_path / "fsrouter.db")).instance == instance  # the same store, however named
    assert Settings(db="other.db").instance != instance


def test_an_instance_given_is_kept_and_one_a_channel_variable_cannot_carry_is_refused() -> None:
    assert Settings(instance="pbx1_a").instance == "pbx1_a"
    with pytest.raises(ConfigError) as caught:
        Settings(instance="pbx1,fsrouter_leg=x")

    assert str(caught.value) == (
        "--instance 'pbx1,fsrouter_leg=x': expected 1 to 64 letters, digits, '.', '_' or '-'"
    )


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("fs1=s3cret", "'fs1=***'"),
        ("fs1:port=s3cret", "'fs1:port=***'"),
        (":8021=s3cret", "':8021=***'"),
        ("fs1", "'fs1'"),
    ],
)
def test_a_malformed_esl_value_is_refused_without_echoing_its_password(spec: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(esl=(spec,))

    assert str(caught.value) == f"--esl {shown}: expected HOST:PORT or HOST:PORT=PASSWORD (port 1 to 65535)"
    assert "s3cret" not in str(caught.value)


def test_a_password_may_hold_any_character_after_the_first_equals_sign() -> None:
    assert Settings(esl=("fs1:8021=pa:ss=word",)).nodes() == [("fs1:8021", "fs1", 8021, "pa:ss=word")]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"log_level": "verbose"}, "--log-level 'verbose': 'verbose' is not LEVEL or COMPONENT=LEVEL"),
        ({"log_level": "info,esl=loud"}, "--log-level 'info,esl=loud': 'esl=loud' is not LEVEL or COMPONENT=LEVEL"),
        ({"metrics_listen": "127.0.0.1:99999"}, "--metrics-listen '127.0.0.1:99999': expected HOST:PORT (port 0 to"),
        ({"esl": ("127.0.0.1:99999",)}, "--esl '127.0.0.1:99999': expected HOST:PORT or HOST:PORT=PASSWORD (port 1"),
        ({"esl": ("127.0.0.1:0",)}, "--esl '127.0.0.1:0': expected HOST:PORT"),
    ],
)
def test_log_levels_and_ports_are_checked_when_the_settings_are_made(setting: dict, message: str) -> None:
    """Before anything is opened or created (a store, a socket), in one line."""
    with pytest.raises(ConfigError) as caught:
        Settings(**setting)

    assert str(caught.value).startswith(message)


def test_per_component_log_levels_are_accepted() -> None:
    assert Settings(log_level="warning,fsrouter.adapters.esl=DEBUG").log_level == "warning,fsrouter.adapters.esl=DEBUG"
