"""A queue's day of waits and talks: the mean and 90th percentile the wallboard shows, from a
count per tenth of a second (a busy day is 100,000 calls; it must not keep each one)."""

import math
import random

from eslkit.stats import _Durations


def _exact(values):
    ordered = sorted(values)
    p90 = round(ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)], 1)
    return round(sum(values) / len(values), 1), p90


def test_mean_and_p90_are_those_of_every_value_kept():
    rng = random.Random(19)
    for n in (1, 2, 9, 10, 11, 99, 1000):
        values = [rng.choice((rng.uniform(0, 30), rng.expovariate(1 / 200), 20.0)) for _ in range(n)]
        durations = _Durations()
        for v in values:
            durations.add(v)
        assert (durations.mean(), durations.p90()) == _exact(values), n


def test_a_day_of_100000_calls_keeps_only_its_tenths():
    rng = random.Random(26)
    durations = _Durations()
    for _ in range(100_000):
        durations.add(rng.uniform(0, 120))
    assert durations.count == 100_000
    assert len(durations._tenths) <= 1201  # 0.0 … 120.0


def test_an_empty_day_has_no_figures():
    assert (_Durations().mean(), _Durations().p90()) == (None, None)
