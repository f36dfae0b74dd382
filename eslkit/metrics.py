"""The statistics in Prometheus' text format, through the official client library.

    body = render_metrics(stats)          # bytes for a /metrics response
    CONTENT_TYPE                          # its Content-Type

`StatsCollector` is a custom collector: it reads the engine's state when Prometheus
scrapes, nothing is updated per event.  Names and labels are stable and documented in
docs/stats.md; labels are few and bounded (queue, kind, agent, ext, state, outcome —
never a call uuid or a caller's number).  Counters (``_total``) count since eslkit
started; the ``_today`` gauges are the wallboard's figures, reset when a day begins.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from eslkit.stats import AGENT_STATES, TALK_BUCKETS, WAIT_BUCKETS, CallCentreStats

__all__ = ["StatsCollector", "render_metrics", "CONTENT_TYPE", "METRIC_NAMES"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_OUTCOMES = ("offered", "answered", "abandoned", "missed")


class StatsCollector:
    """A prometheus_client collector over a `CallCentreStats` (``now()`` is the switch's clock)."""

    def __init__(self, stats: CallCentreStats, now: Optional[Callable[[], Optional[float]]] = None):
        self.stats = stats
        self.now = now or (lambda: None)

    def describe(self) -> list:
        return []  # the families depend on the queues and agents seen: nothing to check at register time

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        now = self.now()
        snap = stats.snapshot(now)
        totals = stats.totals()
        q_labels = ["queue", "kind"]

        waiting = GaugeMetricFamily("eslkit_queue_callers_waiting", "Callers waiting in the queue now.", labels=q_labels)
        longest = GaugeMetricFamily("eslkit_queue_longest_wait_seconds",
                                    "How long the caller waiting longest has waited (0 when nobody waits).",
                                    labels=q_labels)
        today = GaugeMetricFamily("eslkit_queue_calls_today",
                                  "Today's calls of the queue by outcome (offered, answered, abandoned, missed).",
                                  labels=q_labels + ["outcome"])
        level = GaugeMetricFamily("eslkit_queue_service_level_ratio",
                                  "Today's share of callers answered within the queue's threshold, of those whose "
                                  "wait ended (absent before any).", labels=q_labels)
        threshold = GaugeMetricFamily("eslkit_queue_service_level_threshold_seconds",
                                      "The queue's service level threshold.", labels=q_labels)
        counters = {o: CounterMetricFamily(f"eslkit_queue_calls_{o}", f"Calls {o} since eslkit started.",
                                           labels=q_labels) for o in _OUTCOMES}
        within = CounterMetricFamily("eslkit_queue_calls_answered_in_service_level",
                                     "Calls answered within the queue's threshold since eslkit started.", labels=q_labels)
        wait = HistogramMetricFamily("eslkit_queue_wait_seconds", "Waits of the answered callers, since eslkit started.",
                                     labels=q_labels)
        talk = HistogramMetricFamily("eslkit_queue_talk_seconds", "Talk time of the queue's answered calls, since "
                                     "eslkit started.", labels=q_labels)
        for q in snap.queues:
            labels = [q.name, q.kind]
            t = totals[(q.name, q.kind)]
            waiting.add_metric(labels, q.waiting)
            longest.add_metric(labels, q.longest_wait or 0.0)
            for outcome in _OUTCOMES:
                today.add_metric(labels + [outcome], getattr(q, outcome))
                counters[outcome].add_metric(labels, getattr(t, outcome))
            if q.service_level is not None:
                level.add_metric(labels, q.service_level)
            threshold.add_metric(labels, q.service_level_seconds)
            within.add_metric(labels, t.answered_within)
            wait.add_metric(labels, _buckets(WAIT_BUCKETS, t.wait_buckets, t.wait_count), t.wait_sum)
            talk.add_metric(labels, _buckets(TALK_BUCKETS, t.talk_buckets, t.talk_count), t.talk_sum)
        yield from (waiting, longest, today, level, threshold, *counters.values(), within, wait, talk)

        a_labels = ["agent", "ext"]
        state = GaugeMetricFamily("eslkit_agent_state", "1 for the state the agent is in now, 0 for the others.",
                                  labels=a_labels + ["state"])
        answered = GaugeMetricFamily("eslkit_agent_calls_answered_today", "Calls the agent answered today.",
                                     labels=a_labels)
        missed = GaugeMetricFamily("eslkit_agent_calls_missed_today", "Calls that rang the agent unanswered today.",
                                   labels=a_labels)
        talked = GaugeMetricFamily("eslkit_agent_talk_seconds_today", "Talk time of the agent's calls ended today.",
                                   labels=a_labels)
        current = GaugeMetricFamily("eslkit_agent_current_call_seconds",
                                    "How long the agent's longest call up now has lasted (0: no call).", labels=a_labels)
        for a in snap.agents:
            labels = [a.name, a.ext or ""]
            for s in AGENT_STATES:
                state.add_metric(labels + [s], 1.0 if a.state == s else 0.0)
            answered.add_metric(labels, a.answered)
            missed.add_metric(labels, a.missed)
            talked.add_metric(labels, a.talk_seconds)
            current.add_metric(labels, a.current_call or 0.0)
        yield from (state, answered, missed, talked, current)

        calls = GaugeMetricFamily("eslkit_calls_today", "Every call that rang an agent or joined a queue, today, by "
                                  "outcome (waiting, answered, missed, busy).", labels=["outcome"])
        for outcome in ("waiting", "answered", "missed", "busy"):
            calls.add_metric([outcome], getattr(snap.calls, outcome))
        yield calls


def _buckets(bounds: tuple, counts: list, total: int) -> list:
    return [(floatToGoString(b), float(c)) for b, c in zip(bounds, counts)] + [("+Inf", float(total))]


def render_metrics(stats: CallCentreStats, now: Optional[float] = None) -> bytes:
    """The text a /metrics endpoint answers with (Content-Type `CONTENT_TYPE`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats, lambda: now))
    return generate_latest(registry)


# Every metric name (as Prometheus' parser reads them back: counters without `_total`,
# histograms by their family name).  docs/stats.md lists the same; a test compares them.
METRIC_NAMES = (
    "eslkit_queue_callers_waiting", "eslkit_queue_longest_wait_seconds", "eslkit_queue_calls_today",
    "eslkit_queue_service_level_ratio", "eslkit_queue_service_level_threshold_seconds",
    "eslkit_queue_calls_offered", "eslkit_queue_calls_answered", "eslkit_queue_calls_abandoned",
    "eslkit_queue_calls_missed", "eslkit_queue_calls_answered_in_service_level", "eslkit_queue_wait_seconds",
    "eslkit_queue_talk_seconds", "eslkit_agent_state", "eslkit_agent_calls_answered_today",
    "eslkit_agent_calls_missed_today", "eslkit_agent_talk_seconds_today", "eslkit_agent_current_call_seconds",
    "eslkit_calls_today",
)
