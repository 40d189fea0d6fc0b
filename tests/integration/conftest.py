"""A real Prometheus server, run as a subprocess, that scrapes a daemon living in this test's gevent hub.

The daemon only serves ``/metrics`` while the hub runs, so everything here that blocks (HTTP requests to
Prometheus, promtool, waiting for the process to exit) runs on gevent's thread pool: the test greenlet
waits cooperatively and Prometheus's scrapes are never starved.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import gevent
import yaml

from fsrouter.sim import Simulator

PROMETHEUS = shutil.which("prometheus") or ""
PROMTOOL = shutil.which("promtool") or ""
NOT_INSTALLED = "prometheus not installed: apt-get install prometheus"
SCRAPE_INTERVAL_SECONDS = 1

Result = TypeVar("Result")


def off_hub(function: Callable[..., Result], *args: Any) -> Result:
    """Run a blocking call on a thread while the hub keeps serving the daemon."""
    result: Result = gevent.get_hub().threadpool.apply(function, args)
    return result


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    """Wait cooperatively (the daemon keeps running) until ``condition()`` holds; False on timeout."""
    return Simulator.wait_until(condition, timeout=timeout, interval=0.2)


def free_port() -> int:
    """A loopback port free right now (Prometheus takes no port 0, so bind one and hand it over)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_prometheus_config(directory: Path, job: str, target: str, rule_files: list[Path]) -> Path:
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool off the hub; its output (stdout and stderr together) is for assertion messages."""
    return off_hub(
        lambda: subprocess.run(
            [PROMTOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30
        )
    )


class PrometheusError(Exception):
    """The HTTP API refused a query (its ``error`` text), e.g. a PromQL syntax error."""


def _get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            document: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as refusal:
        document = json.load(refusal)  # API errors come with a JSON body that says why
    return document


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def series_labels(metric: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in sorted(metric.items()) if name != "__name__")


class PrometheusServer:
    """One Prometheus process with its storage and log in ``directory``; ``query()`` returns instant vectors."""

    def __init__(self, config: Path, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        self._command = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        ready = eventually(lambda: self.exited or off_hub(_is_ready, f"{self.url}/-/ready"), timeout)
        assert ready and not self.exited, f"Prometheus did not become ready:\n{self.log_tail()}"

    @property
    def exited(self) -> bool:
        return self._process is None or self._process.poll() is not None

    def stop(self) -> None:
        """Terminate, wait, kill if it will not go: no process is left behind."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            off_hub(self._process.wait, 10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            off_hub(self._process.wait, 10)

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a ``/api/v1/...`` answer; PrometheusError when the API says the request is wrong."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        document = off_hub(_get_json, f"{self.url}/api/v1/{path}{query}")
        if document.get("status") != "success":
            raise PrometheusError(document.get("error", document))
        return document["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) of ``expression`` evaluated now."""
        data = self.api("query", query=expression)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expression: str) -> dict[str, float]:
        """``{series labels as text (no metric name): value}`` of an instant query, for readable comparisons."""
        return {series_labels(sample["metric"]): float(sample["value"][1]) for sample in self.query(expression)}

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@contextmanager
def running_prometheus(config: Path, directory: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(config, directory)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
