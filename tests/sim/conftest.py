from __future__ import annotations

from collections.abc import Iterator

import pytest

from fsrouter.sim import Simulator
from tests.sim.esl_client import RawEslClient


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(password="ClueCon", hostname="sim", heartbeat=20.0, seed=1, chunking=True)
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim: Simulator) -> Iterator[RawEslClient]:
    connection = RawEslClient(sim.port)
    connection.login()
    yield connection
    connection.close()
