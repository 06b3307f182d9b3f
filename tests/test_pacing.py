"""Read pacing in the Azure layer: a token bucket per subscription under ARM's read refill
rate, on every GET our SDK clients send, with 429 ``Retry-After`` still honoured. Everything
runs on a simulated clock: no test waits or depends on how fast the machine is."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.transport import HttpRequest

from handlers.azure.backup import vault_refs
from handlers.azure.clients import AzureClients
from handlers.azure.pacing import ReadPacer, ReadPacingPolicy
from handlers.core.settings import Settings
from sandbox.clock import SimulatedClock
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS

SUB = "00000000-0000-4000-8000-00000000abcd"
OTHER = "00000000-0000-4000-8000-00000000dcba"


def _clients(sim: AzureSimulator, clock: SimulatedClock, rate: float, burst: int) -> AzureClients:
    settings = Settings(
        management_url=sim.base_url,
        ca_bundle=sim.ca_pem_path,
        static_token="t",
        arm_reads_per_second=rate,
        arm_read_burst=burst,
    )
    return AzureClients(settings, FAST_CLIENTS, clock.pace())


# -- the bucket ----------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "burst", "reads"), [(25, 1, 100), (24, 50, 1_000), (2, 10, 30)])
def test_n_reads_take_at_least_n_minus_the_burst_over_the_rate(
    rate: float, burst: int, reads: int
) -> None:
    clock = SimulatedClock()
    pacer = ReadPacer(rate, burst, clock.pace())
    for _ in range(reads):
        pacer.take()
    assert clock.now() == pytest.approx((reads - burst) / rate)
    assert pacer.taken == reads


def test_a_burst_goes_at_once_and_a_quiet_spell_refills_no_more_than_the_burst() -> None:
    clock = SimulatedClock()
    pacer = ReadPacer(10, 5, clock.pace())
    for _ in range(5):
        assert pacer.take() == 0  # the bucket starts full
    assert clock.now() == 0
    assert pacer.take() == pytest.approx(0.1)
    clock.advance(3_600)  # an hour without reads: 5 tokens, not 36,000
    started = clock.now()
    for _ in range(15):
        pacer.take()
    assert clock.now() - started == pytest.approx(1.0)  # (15 - 5) / 10


def test_concurrent_readers_share_one_rate() -> None:
    clock = SimulatedClock()
    pacer = ReadPacer(20, 10, clock.pace())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: [pacer.take() for _ in range(50)], range(8)))
    assert pacer.taken == 400
    assert clock.now() >= (400 - 10) / 20 - 1e-9


def test_only_reads_take_tokens() -> None:
    clock = SimulatedClock()
    pacer = ReadPacer(1, 1, clock.pace())
    policy = ReadPacingPolicy(pacer)
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        policy.on_request(PipelineRequest(HttpRequest(method, "https://x/y"), _context()))
    assert pacer.taken == 0
    for _ in range(3):
        policy.on_request(PipelineRequest(HttpRequest("GET", "https://x/y"), _context()))
    assert pacer.taken == 3 and clock.now() == pytest.approx(2.0)


def _context() -> Any:
    from azure.core.pipeline import PipelineContext

    return PipelineContext(None)


def test_a_429_holds_the_bucket_until_its_retry_after_has_passed() -> None:
    clock = SimulatedClock()
    pacer = ReadPacer(10, 5, clock.pace())
    policy = ReadPacingPolicy(pacer)
    read = PipelineRequest(HttpRequest("GET", "https://x/y"), _context())
    write = PipelineRequest(HttpRequest("PUT", "https://x/y"), _context())
    policy.on_response(write, _response(write, 429, {"Retry-After": "30"}))  # not our bucket
    policy.on_response(read, _response(read, 202, {"Retry-After": "30"}))  # a poll's pace
    policy.on_request(read)
    assert clock.now() == 0  # the bucket is full and nothing holds it
    policy.on_response(read, _response(read, 429, {"Retry-After": "7"}))
    policy.on_request(read)
    assert clock.now() == pytest.approx(7.0)  # tokens were left: only the 429 held it
    policy.on_request(read)
    assert clock.now() == pytest.approx(7.0)  # once it has passed, the bucket goes on


def _response(request: PipelineRequest[Any], status: int, headers: dict[str, str]) -> Any:
    from azure.core.pipeline import PipelineResponse

    answer = SimpleNamespace(status_code=status, headers=headers)
    return PipelineResponse(request.http_request, answer, request.context)


def test_the_pacer_refuses_a_rate_it_cannot_keep() -> None:
    with pytest.raises(ValueError):
        ReadPacer(0, 10)
    with pytest.raises(ValueError):
        ReadPacer(25, 0)


# -- on the wire, through the SDK clients ----------------------------------------------------


def test_every_get_of_the_sdk_clients_is_paced_per_subscription(sim: AzureSimulator) -> None:
    clock = SimulatedClock()
    clients = _clients(sim, clock, rate=10, burst=5)
    for _ in range(25):
        vault_refs(clients, SUB)
    assert len(sim.calls_to(route="vault_list")) == 25
    assert clock.now() == pytest.approx((25 - 5) / 10)
    # Another subscription has its own bucket (ARM throttles per subscription): a full one.
    before = clock.now()
    for _ in range(5):
        vault_refs(clients, OTHER)
    assert clock.now() == before
    assert clients.pacer(SUB).taken == 25 and clients.pacer(OTHER).taken == 5
    # A client made again (the cache let it go) keeps the subscription's bucket.
    assert clients.pacer(SUB.upper()) is clients.pacer(SUB)


def test_a_429_retry_after_is_honoured_and_the_resent_read_is_paced(sim: AzureSimulator) -> None:
    clock = SimulatedClock()
    clients = _clients(sim, clock, rate=10, burst=100)
    sim.faults.add("vault_list", "429", times=2, retry_after=7)
    assert vault_refs(clients, SUB) == []
    assert [c.status for c in sim.calls_to(route="vault_list")] == [429, 429, 200]
    assert clock.sleeps.count(7.0) == 2  # Retry-After, on the same clock, each time
    assert clock.now() == pytest.approx(14.0)
    assert clients.pacer(SUB).taken == 3  # ARM counts each request: so do we


class _ReadsWhileSleeping(SimulatedClock):
    """A simulated clock that runs ``meanwhile`` (once) when the first sleep begins, before
    the time moves: another reader sending while the first waits out a Retry-After."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Any = None

    def sleep(self, seconds: float) -> None:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile:
            meanwhile()
        super().sleep(seconds)


def test_a_429_holds_every_reader_of_the_subscription_until_its_retry_after(
    sim: AzureSimulator,
) -> None:
    """ARM's bucket is empty for all our readers, not only the one it answered: a read sent
    while another waits out a 429's Retry-After waits until it has passed, rather than be
    answered 429 too."""
    clock = _ReadsWhileSleeping()
    clients = _clients(sim, clock, rate=10, burst=100)
    sim.faults.add("vault_list", "429", times=1, retry_after=7)
    sent_at = []

    def other_reader() -> None:
        vault_refs(clients, SUB)
        sent_at.append(clock.now())

    clock.meanwhile = other_reader
    vault_refs(clients, SUB)
    assert sent_at == [pytest.approx(7.0)]
    assert [c.status for c in sim.calls_to(route="vault_list")] == [429, 200, 200]


def test_a_throttled_burst_still_goes_through_at_the_pace(sim: AzureSimulator) -> None:
    """Many readers, ARM throttling some of them: every read goes through, every Retry-After
    is waited, and the pacer's own waits hold the reads to the rate: the Retry-After waits
    alone are far shorter than the reads need."""
    clock = SimulatedClock()
    rate, burst, reads, throttled, retry_after = 20, 10, 200, 5, 1
    clients = _clients(sim, clock, rate=rate, burst=burst)
    sim.faults.add("vault_list", "429", times=throttled, retry_after=retry_after)
    lock = threading.Lock()
    done = []

    def read(_: int) -> None:
        vault_refs(clients, SUB)
        with lock:
            done.append(1)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(read, range(reads)))
    assert len(done) == reads
    calls = sim.calls_to(route="vault_list")
    sent = reads + throttled
    assert len(calls) == sent and sum(c.status == 429 for c in calls) == throttled
    pacer = clients.pacer(SUB)
    assert pacer.taken == sent
    # Every moment of the simulated clock is a sleep: the pacer's or a Retry-After.
    assert clock.now() == pytest.approx(pacer.waited + throttled * retry_after)
    assert pacer.waited >= (sent - burst) / rate - throttled * retry_after - 1e-9
