"""The benchmark suite in smoke mode: tiny N, one repetition, no speed verdicts.

It runs ``benchmarks/run.py --smoke`` for real (firehose, C ESL module,
greenswitch and genesis in their own virtualenv, eslkit's commands) and checks
that every figure was produced and every event was decoded correctly — so the
suite cannot rot.  Whether a target passes is the benchmark's business, not
this test's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.day_memory import MIN_SAMPLES

ROOT = Path(__file__).resolve().parent.parent

FIGURES = [
    "c_esl", "c_esl_json", "pure_esl", "pure_esl_json", "greenswitch", "genesis", "bare_socket",
    "eslkit_client", "watch_quiet", "watch_json", "latency_floor", "popup_p99", "serve_card_p99", "serve_fanout_p99",
    "serve_agent_memory", "relay_mqtt",
    "relay_amqp", "relay_amqp_v1", "watch_rss",
    "tracker_memory", "day_serve", "day_popup", "day_relay", "sim_one", "sim_many", "build_second", "build_standalone",
]
THROUGHPUT = FIGURES[:10]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    for tool in ("swig", "gcc", "g++"):
        if shutil.which(tool) is None:  # scripts/setup --test installs them
            pytest.skip(f"{tool} is not installed: the C ESL anchor and eslkit build need it")
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    return {"figures": {f["key"]: f for f in data["figures"]}, "count": data["count"], "table": proc.stdout}


def test_every_figure_is_produced(smoke):
    figures = smoke["figures"]
    assert list(figures) == FIGURES
    missing = {k: f["note"] for k, f in figures.items() if f["value"] is None}
    assert not missing, missing
    for key, f in figures.items():
        assert f["label"] in smoke["table"], key


@pytest.mark.parametrize("key", THROUGHPUT)
def test_every_client_read_every_event(smoke, key):
    f = smoke["figures"][key]
    checks = f["checks"]
    count = smoke["count"]
    assert checks["complete"], checks  # the firehose sent all N events
    assert all(n is not None and n >= count for n in checks["events"]), checks
    assert checks["errors"] == 0, checks["first_error"]  # Event-Name and Unique-ID of each, in order
    assert checks["dropped"] == 0
    assert f["value"] > 0
    if key != "c_esl":
        assert f["ratio"] is not None
        assert f["anchor_label"] == ("C ESL json" if key == "pure_esl_json" else "C ESL")


def test_watch_json_lines_decode_every_event(smoke):
    ndjson = smoke["figures"]["watch_json"]["checks"]["ndjson_check"]
    assert ndjson["rc"] == 0
    assert ndjson["events"] == smoke["count"]
    assert ndjson["errors"] == 0, ndjson["first_error"]


def test_popup_wrote_every_state_change(smoke):
    f = smoke["figures"]["popup_p99"]["checks"]
    assert f["state_changes"] == f["expected_changes"] == 3 * f["calls"]
    assert f["unmatched"] == 0
    assert f["background_events"] > 0
    floor = smoke["figures"]["latency_floor"]["checks"]
    assert floor["samples"] == floor["expected"]


def test_serve_fanout_reached_every_agent(smoke):
    f = smoke["figures"]["serve_fanout_p99"]["checks"]
    assert f["connected"] == f["agents"] and f["failed_streams"] == 0, f
    assert f["ringing_legs"] > 0 and f["delivered"] == f["ringing_legs"] and f["lost"] == 0, f
    assert f["close_cpu_s"] is not None and smoke["figures"]["serve_agent_memory"]["value"] is not None


def test_memory_figures_ran_to_the_end(smoke):
    rss = smoke["figures"]["watch_rss"]["checks"]
    assert rss["rc"] == 0 and rss["events_sent"] == 20_000 and rss["samples"] >= 3
    tracker = smoke["figures"]["tracker_memory"]["checks"]
    assert tracker["changes"] == {"ringing": 300, "answered": 300, "ended": 300}
    for key in ("day_serve", "day_popup", "day_relay"):
        day = smoke["figures"][key]["checks"]
        assert day["ended_early"] is None and day["samples"] >= MIN_SAMPLES, day
    assert smoke["figures"]["day_popup"]["checks"]["ended_legs"] == 2 * 300  # every agent leg of every call


def test_sim_clients_all_received_well_formed_events(smoke):
    runs = smoke["figures"]["sim_one"]["checks"]["runs"]
    assert runs and all(r["events_total"] > 0 and r["bad"] == 0 for r in runs)
    many = smoke["figures"]["sim_many"]["checks"]
    assert many["receiving"] == many["clients"] and many["connect_failures"] == 0 and many["bad"] == 0


def test_build_figures_built_and_found_nothing_to_do(smoke):
    assert smoke["figures"]["build_second"]["checks"]["errors"] == []
    standalone = smoke["figures"]["build_standalone"]["checks"]
    assert standalone["errors"] == [] and standalone["commands"] >= 10


@pytest.mark.parametrize("key", ["relay_mqtt", "relay_amqp", "relay_amqp_v1"])
def test_the_relay_and_its_anchor_delivered_every_event(smoke, key):
    checks = smoke["figures"][key]["checks"]
    assert checks["lost"] == [0] and checks["anchor_lost"] == [0], checks
    assert smoke["figures"][key]["ratio"] > 0
