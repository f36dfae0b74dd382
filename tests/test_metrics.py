"""/metrics: the engine's figures in Prometheus' text format, read back by the real
Prometheus text parser (prometheus_client's), with the documented names."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from eslkit.metrics import CONTENT_TYPE, METRIC_NAMES, render_metrics
from eslkit.stats import CallCentreStats
from tests.test_stats_flows import capture_events

ROOT = Path(__file__).resolve().parents[1]


def scrape(stats, now=None) -> dict:
    text = render_metrics(stats, now).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family, **labels) -> dict:
    return {s.name: s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())}


def test_two_callers_scraped():
    stats = CallCentreStats()
    for event in capture_events("1.10.12-b/scenario_two_callers_plain.raw"):
        stats.feed(event)
    families = scrape(stats)
    assert set(families) == set(METRIC_NAMES)
    q = {"queue": "2000@default", "kind": "callcenter"}
    assert samples(families["eslkit_queue_calls_offered"], **q) == {"eslkit_queue_calls_offered_total": 2.0}
    assert families["eslkit_queue_calls_offered"].type == "counter"
    today = {s.labels["outcome"]: s.value for s in families["eslkit_queue_calls_today"].samples}
    assert today == {"offered": 2.0, "answered": 2.0, "abandoned": 0.0, "missed": 0.0}
    assert samples(families["eslkit_queue_service_level_ratio"], **q) == {"eslkit_queue_service_level_ratio": 1.0}
    wait = samples(families["eslkit_queue_wait_seconds"], **q)
    # the waits were 3.08 s and 6.70 s: one in the 5 s bucket, both in the 10 s one
    assert families["eslkit_queue_wait_seconds"].type == "histogram"
    assert wait["eslkit_queue_wait_seconds_count"] == 2.0
    assert round(wait["eslkit_queue_wait_seconds_sum"], 2) == 9.78
    buckets = {s.labels["le"]: s.value for s in families["eslkit_queue_wait_seconds"].samples
               if s.name.endswith("_bucket")}
    assert (buckets["5.0"], buckets["10.0"], buckets["+Inf"]) == (1.0, 2.0, 2.0)
    states = {(s.labels["agent"], s.labels["state"]): s.value for s in families["eslkit_agent_state"].samples}
    assert states[("1001@default", "available")] == 1.0 and states[("1001@default", "talking")] == 0.0
    assert sum(v for (agent, _), v in states.items() if agent == "1002@default") == 1.0
    answered = {s.labels["agent"]: s.value for s in families["eslkit_agent_calls_answered_today"].samples}
    assert answered == {"1001@default": 1.0, "1002@default": 1.0}
    assert CONTENT_TYPE.startswith("text/plain; version=")


def test_no_calls_yet_is_still_valid():
    families = scrape(CallCentreStats())
    assert "eslkit_calls_today" in families
    assert {s.labels["outcome"]: s.value for s in families["eslkit_calls_today"].samples} == {
        "waiting": 0.0, "answered": 0.0, "missed": 0.0, "busy": 0.0}


def test_hostile_names_stay_labels():
    """A queue or agent name is a label value: quotes, backslashes and newlines are escaped,
    and the parser reads back exactly the name."""
    from eslkit.event import Event

    stats = CallCentreStats()
    name = 'q"1\\\n{x="y"}'
    stats.feed(Event([("Event-Name", "CUSTOM"), ("Event-Subclass", "callcenter::info"), ("CC-Queue", name),
                      ("CC-Action", "member-queue-start"), ("CC-Member-UUID", "m1"),
                      ("CC-Member-Session-UUID", "s1"), ("Event-Date-Timestamp", "1796124347882128")]))
    families = scrape(stats, 1796124350.0)
    assert samples(families["eslkit_queue_callers_waiting"], queue=name) == {"eslkit_queue_callers_waiting": 1.0}
    assert samples(families["eslkit_queue_longest_wait_seconds"], queue=name)["eslkit_queue_longest_wait_seconds"] == 2.1


def test_docs_name_every_metric():
    doc = (ROOT / "docs" / "stats.md").read_text()
    named = set(re.findall(r"`(eslkit_[a-z_]+?)(?:_total)?(?:\{[^`]*)?`", doc))
    assert set(METRIC_NAMES) <= named


def test_the_grafana_dashboard_queries_only_documented_metrics():
    import json

    dash = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs.append(dash["templating"]["list"][0]["query"])
    used = {re.sub(r"_(total|bucket|sum|count)$", "", name) for e in exprs for name in re.findall(r"eslkit_[a-z_]+", e)}
    assert used and used <= set(METRIC_NAMES)
    assert {p["id"] for p in dash["panels"]} == set(range(1, len(dash["panels"]) + 1))
