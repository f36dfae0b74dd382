"""`watch --stats` on the statistics engine: the README's own example counts 1001's
answered calls, the figures say what a filter hides, and queues and agents come along."""

from __future__ import annotations

import json

from tests.test_stats_flows import DATA
from tests.test_watch import watch
from tests.support.sim import sim_in_thread
from tests.test_watch_live import watch_cli


def test_readme_example_counts_the_calls_1001_answered():
    """`watch --header Caller-Destination-Number=1001 --stats` on a switch playing the queue
    call four times: 1001 answered four calls (the old counts said 0: they counted only the
    callers' legs, which that filter removes), and the stats say what the filter hides."""
    with sim_in_thread(scenario="queue", speed=20, loop=True) as sim:
        r = watch_cli(sim.port, "--header", "Caller-Destination-Number=1001", "--stats", "--format", "json",
                      "--quiet", "--count", 4 * 25, ESL_PASSWORD="ClueCon")  # 25 events of 1001's leg a call
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)["stats"]
    assert stats["calls_answered"] == 4
    agents = {a["name"]: a for a in stats["agents"]}
    assert set(agents) == {"1001"} and agents["1001"]["answered"] == stats["calls_answered"]
    assert [q["name"] for q in stats["queues"]] == ["2000"]
    assert any("--header Caller-Destination-Number=1001" in note for note in stats["notes"])


def test_the_filtered_capture():
    result = watch("--replay", DATA / "1.10.12/scenario_queue_plain_filtered_1001_with_api.raw", "--stats",
                   "--format", "json", "--quiet", "--header", "Caller-Destination-Number=1001")
    stats = json.loads(result.stdout)["stats"]
    assert (stats["calls_answered"], stats["calls_missed"], stats["calls_busy"]) == (1, 0, 0)
    (q,) = stats["queues"]
    assert (q["name"], q["kind"], q["offered"], q["answered"]) == ("2000", "group", 1, 1)
    # The popup-style subscription has no CHANNEL_DESTROY: 1001's leg ends with its
    # CHANNEL_HANGUP_COMPLETE (NORMAL_CLEARING at 446.234334), the last event of the capture.
    # Nothing is up any more (it said 1 channel, 1 call forever).
    assert (stats["active_channels"], stats["active_calls"]) == (0, 0)


def test_queues_and_agents_in_the_final_object():
    result = watch("--replay", DATA / "1.10.12-b/scenario_two_callers_plain.raw", "--stats", "--format", "json",
                   "--quiet")
    stats = json.loads(result.stdout)["stats"]
    assert stats["notes"] == []
    (q,) = stats["queues"]
    assert (q["name"], q["offered"], q["answered"], q["abandoned"]) == ("2000@default", 2, 2, 0)
    assert {a["name"]: a["answered"] for a in stats["agents"]} == {"1001@default": 1, "1002@default": 1}
    assert (stats["calls_answered"], stats["calls_missed"]) == (2, 0)


def test_a_subscription_without_the_queue_events_says_so():
    result = watch("--replay", DATA / "1.10.12-b/scenario_two_callers_plain.raw", "--stats", "--format", "json",
                   "--quiet", "--filter", "CHANNEL_CREATE,CHANNEL_ANSWER,CHANNEL_HANGUP_COMPLETE")
    stats = json.loads(result.stdout)["stats"]
    assert stats["queues"] == []  # no callcenter::info: no queue to count
    assert any("mod_callcenter queues need CUSTOM callcenter::info" in n for n in stats["notes"])
    assert stats["calls_answered"] == 2  # the agents' legs still say who answered
    # and the panel says it too (plain output prints the panel on stderr at the end)
    result = watch("--replay", DATA / "1.10.12-b/scenario_two_callers_plain.raw", "--stats", "--format", "plain",
                   "--quiet", "--filter", "CHANNEL_ANSWER")
    assert "agents' calls need CHANNEL_CREATE, CHANNEL_HANGUP_COMPLETE" in result.stderr.replace("\n", " ")


def test_blind_spots_read_the_subscription_as_the_switch_does():
    from eslkit.stats import blind_spots

    assert blind_spots(["ALL"]) == []
    assert blind_spots(["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "CUSTOM", "callcenter::info",
                        "fifo::info"]) == []
    # a bare CUSTOM gets only CUSTOM events without a subclass (mod_event_socket): no queue events
    bare = blind_spots(["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "CUSTOM"])
    assert [n.split(" need ")[0] for n in bare] == ["mod_callcenter queues", "mod_fifo queues"]
    # names in any case, with the SWITCH_EVENT_ prefix, as switch_name_event() reads them
    only_fifo = blind_spots(["switch_event_channel_create", "channel_answer", "CHANNEL_HANGUP_COMPLETE",
                             "CUSTOM", "callcenter::info"])
    assert only_fifo == ["mod_fifo queues need CUSTOM fifo::info: not subscribed, so those queues are not counted"]


def test_a_late_row_of_a_channel_gone_long_ago_is_still_stale():
    """`watch --stats` remembers the last 1,000 channels that ended, so that a `show channels`
    row answered late is not counted as up.  A channel ends once, though two events say so
    (CHANNEL_HANGUP_COMPLETE, then CHANNEL_DESTROY): 600 channels fill 600 places, not 1,200."""
    from eslkit.views.stats import CallStats
    from tests.test_calls_flows import chan

    stats = CallStats()
    for i in range(600):
        uuid = f"leg-{i}"
        stats.add(chan("CHANNEL_CREATE", uuid, i))
        stats.add(chan("CHANNEL_HANGUP_COMPLETE", uuid, i + 1))
        stats.add(chan("CHANNEL_DESTROY", uuid, i + 1))
    assert (stats.active_channels, stats.active_calls) == (0, 0)
    stats.channels_up([{"uuid": "leg-0", "call_uuid": "leg-0"}, {"uuid": "leg-new", "call_uuid": "leg-new"}])
    assert (stats.active_channels, stats.active_calls) == (1, 1)  # only the channel really up
