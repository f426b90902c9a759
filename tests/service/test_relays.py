"""The relays' backoff: jittered, starting within RELAY_RETRY_FIRST_MAX_S, at most doubling,
capped at RELAY_RETRY_DELAY_MAX_S; reproducible from a seed."""

from __future__ import annotations

import itertools
import random

from wallet.limits import RELAY_RETRY_DELAY_MAX_S, RELAY_RETRY_FIRST_MAX_S
from wallet.service.relays import next_retry_delay_ms


def test_delays_start_within_the_bound_at_most_double_and_are_capped(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        delays = [next_retry_delay_ms(None, rng)]
        while len(delays) < 40:
            delays.append(next_retry_delay_ms(delays[-1], rng))
        assert RELAY_RETRY_FIRST_MAX_S * 500 <= delays[0] <= RELAY_RETRY_FIRST_MAX_S * 1000
        for before, after in itertools.pairwise(delays):
            assert after <= 2 * before
            assert after >= min(1.5 * before - 1, RELAY_RETRY_DELAY_MAX_S * 1000)
        assert max(delays) == delays[-1] == RELAY_RETRY_DELAY_MAX_S * 1000


def test_the_same_seed_gives_the_same_delays(seed: int) -> None:
    def run(rng: random.Random) -> list[int]:
        delays = [next_retry_delay_ms(None, rng)]
        for _ in range(10):
            delays.append(next_retry_delay_ms(delays[-1], rng))
        return delays

    assert run(random.Random(seed)) == run(random.Random(seed))
