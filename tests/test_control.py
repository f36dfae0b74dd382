"""eslkit.control's checks, before anything is sent: whose call it is, and what may reach an
api line.  (Everything that is sent is tested end to end in test_phone.py.)"""

from __future__ import annotations

import pytest

from eslkit.calls import LegView
from eslkit.control import (Action, BadNumber, NoCall, NotAllowed, Policy, RateLimit, Request, RequestRefused, authorise,
                            check_ext)
from eslkit.control.limit import Limiter

# What an agent's desktop might send to smuggle a second command or a dialplan
# application onto the switch's api line.
HOSTILE = [
    "1002 XML default &park", "1002,user/1003", "1002|user/1003", "1002 &bridge(user/1003)",
    "{origination_uuid=x}1002", "1002'", '1002"', "1002\nexit", "1002\r\n\r\napi status", "1002\t",
    " 1002", "1002 ", "", "1002;1003", "${1003}", "1002$", "1002/1003", "user/1003", "1002@evil", "../1002",
    "١٠٠٢",  # Arabic-Indic digits: \d would take them, the switch's dialplan would not
]


@pytest.mark.parametrize("text", HOSTILE + ["1" * 33, "sales"])
def test_hostile_destinations_never_pass(text: str) -> None:
    with pytest.raises(BadNumber) as err:
        Policy().number(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", HOSTILE)
def test_an_extra_pattern_cannot_let_them_through(text: str) -> None:
    with pytest.raises(BadNumber):
        Policy(patterns=(r".*", r"[\s\S]*")).number(text)


@pytest.mark.parametrize("text", ["6208", "+4930123456", "*97", "#21#", "1" * 32])
def test_numbers_pass(text: str) -> None:
    assert Policy().number(text) == text


def test_extra_patterns_are_whole_matches() -> None:
    policy = Policy(patterns=("sales", r"9\d{3}"))
    assert policy.number("sales") == "sales"
    assert policy.number("9123") == "9123"
    with pytest.raises(BadNumber):
        policy.number("salesforce")
    with pytest.raises(BadNumber):
        Policy().number("sales")


@pytest.mark.parametrize("bad", ["", "public default", "a&b", "x'y", "ctx\n"])
def test_context_is_checked_when_the_policy_is_made(bad: str) -> None:
    with pytest.raises(BadNumber):
        Policy(context=bad)


@pytest.mark.parametrize("bad", ["sofia/gw/{number} &park", "sofia/{number},user/1", "sofia/gateway/x", "'{number}'"])
def test_endpoint_template_is_checked(bad: str) -> None:
    with pytest.raises(BadNumber):
        Policy(endpoint=bad)


@pytest.mark.parametrize("bad", ["1001 &", "1001,1002", "1001}", "", "1001'", "user/1001"])
def test_extension_is_checked(bad: str) -> None:
    with pytest.raises(BadNumber):
        check_ext(bad)


def leg(ext: str, uuid: str, state: str = "answered", on_hold: bool = False, bridged=None) -> LegView:
    return LegView(ext=ext, state=state, leg_uuid=uuid, call_uuid="call-" + uuid, caller_number="6208",
                   on_hold=on_hold, bridged=state == "answered" if bridged is None else bridged)


def test_only_the_extensions_own_legs() -> None:
    legs = [leg("1002", "u2")]
    with pytest.raises(NoCall, match="1001 has no call right now"):
        authorise(Request("1001", Action.hangup), legs)
    with pytest.raises(NotAllowed, match="1001 has no call 'u2'"):
        authorise(Request("1001", Action.hangup, uuid="u2"), legs)
    with pytest.raises(NotAllowed):
        authorise(Request("1001", Action.hangup, uuid="call-u2"), legs)
    assert authorise(Request("1002", Action.hangup, uuid="call-u2"), legs).leg_uuid == "u2"


def test_the_state_the_action_needs() -> None:
    ringing, held, talking = leg("1001", "r", "ringing"), leg("1001", "h", on_hold=True), leg("1001", "t")
    assert authorise(Request("1001", Action.answer), [ringing, held]).leg_uuid == "r"
    assert authorise(Request("1001", Action.unhold), [ringing, held, talking]).leg_uuid == "h"
    assert authorise(Request("1001", Action.hold), [ringing, held, talking]).leg_uuid == "t"
    with pytest.raises(NoCall, match="is already on hold"):
        authorise(Request("1001", Action.hold), [held])
    with pytest.raises(NoCall, match="is not answered yet"):
        authorise(Request("1001", Action.transfer), [ringing])
    with pytest.raises(NoCall, match="is not connected to anyone yet"):
        authorise(Request("1001", Action.transfer), [leg("1001", "w", bridged=False)])
    # Click-to-dial: 1001 answered, 6208 still rings. A hold now would be lost when 6208 answers
    # (the switch sets the call ACTIVE with no CHANNEL_UNHOLD), so it waits for the far party.
    with pytest.raises(NoCall, match="is not connected to anyone yet") as refused:
        authorise(Request("1001", Action.hold), [leg("1001", "w", bridged=False)])
    assert refused.value.fix == "Put it on hold once the other party answers."
    with pytest.raises(NoCall, match="has 2 calls"):
        authorise(Request("1001", Action.hangup), [ringing, talking])
    assert authorise(Request("1001", Action.hangup, uuid="t"), [ringing, talking]).leg_uuid == "t"
    with pytest.raises(NoCall, match="no call right now"):
        authorise(Request("1001", Action.hangup), [leg("1001", "e", "ended")])


def test_control_exit_codes_are_in_the_one_list_and_their_own() -> None:
    """Each refusal has its own exit code, in eslkit.errors with every other code."""
    from eslkit import errors

    def family(cls):
        yield cls
        for sub in cls.__subclasses__():
            yield from family(sub)

    everything = set(family(errors.EslkitError))
    control = set(family(errors.ControlError))
    assert all(cls.__module__ == "eslkit.errors" for cls in everything)
    codes = [cls.exit_code for cls in control]
    assert len(codes) == len(set(codes)) == 8
    assert not set(codes) & {cls.exit_code for cls in everything - control}


def test_the_rate_limit_is_a_sliding_window_per_extension() -> None:
    """One limit for every way in (the controller's): 5 requests of one extension in any
    10 s; a refused one is not counted, so waiting is enough; other extensions go on."""
    now = [1000.0]
    limiter = Limiter(RateLimit(burst=5, per=10.0), clock=lambda: now[0])
    for _ in range(5):
        limiter.admit("1001")
        now[0] += 1.0
    with pytest.raises(RequestRefused) as err:
        limiter.admit("1001")
    assert (err.value.kind, err.value.exit_code) == ("rate_limited", 47)
    assert str(err.value) == "1001 sent more than 5 control requests in 10 s; wait a moment."
    assert err.value.retry_after == pytest.approx(5.0)
    limiter.admit("1002")  # another agent is not held up
    now[0] += 4.9
    with pytest.raises(RequestRefused):
        limiter.admit("1001")
    now[0] += 0.1  # the first request is 10 s old: one more may go
    limiter.admit("1001")
    with pytest.raises(RequestRefused):
        limiter.admit("1001")


def test_a_limiter_forgets_the_oldest_extensions() -> None:
    limiter = Limiter(RateLimit(burst=1, per=60.0), clock=lambda: 0.0, remember=3)
    for ext in ("a", "b", "c", "d"):
        limiter.admit(ext)
    limiter.admit("a")  # forgotten: a relay that saw many topics does not grow without end
    with pytest.raises(RequestRefused):
        limiter.admit("d")


@pytest.mark.parametrize("burst, per", [(0, 10.0), (5, 0.0)])
def test_a_rate_limit_that_lets_nothing_through_is_refused(burst: int, per: float) -> None:
    with pytest.raises(BadNumber, match="lets nothing through"):
        RateLimit(burst, per)


def test_the_newest_hangup_causes_of_the_switch_are_accepted():
    """FreeSWITCH 1.10.12's cause chart ends with INVALID_IDENTITY, STALE_DATE and REJECT_ALL
    (823–825, switch_types.h): a hangup with one of them goes to the switch as given."""
    from eslkit.causes import CAUSES
    from eslkit.control import _cause

    for name, code in (("INVALID_IDENTITY", 823), ("STALE_DATE", 824), ("REJECT_ALL", 825)):
        assert _cause(name) == name and CAUSES[name] == code
    assert len(set(CAUSES.values())) == len(CAUSES)  # one name a code, as the chart has them
