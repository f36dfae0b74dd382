"""Which events a connection gets: mod_event_socket's rules, sans-IO.

FreeSWITCH decides per connection, in ``event_handler()`` of
``src/mod/event_handlers/mod_event_socket/mod_event_socket.c`` (1.10.12):

1. **Event names** (`EventNames`).  ``event [plain|json|xml] WORD...`` turns
   names on; ``switch_name_event()`` reads them case-insensitively, also with a
   ``SWITCH_EVENT_`` prefix, and ignores words it does not know.  ``ALL`` turns
   every name on, and every CUSTOM subclass.  Every word after ``CUSTOM`` is a
   subclass (``CUSTOM sofia::register``); a CUSTOM event with a subclass passes
   only when that subclass was named (a bare ``CUSTOM`` gets only CUSTOM events
   without one).  ``nixevent`` turns names off (from ``ALL`` it lists every
   other name), ``noevents`` turns everything off.
2. **Header filters** (`HeaderFilters`).  With any ``filter NAME VALUE``
   installed an event passes only when one filter matches, in the order they
   were added: the header is looked up with its name in any case; ``VALUE``
   compares case-insensitively (``strcasecmp``), or as a PCRE when it starts
   with ``/`` (``/regex/`` with ``i`` or ``s`` after the last ``/``).  A value
   prefixed ``-`` is a negative filter: when it matches, the event is dropped
   whatever else matched; ``+`` (the default) is positive.  An event that lacks
   the header is not judged by that filter; with only negative filters nothing
   passes.

`Subscription` puts both together behind one ``wants(event)``: the client
builds its ``event`` and ``filter`` commands with it, the simulated switch
decides with it, and so do the sources without a switch (a recording, a
broker) and the relay.  An event here is anything with ``event_name``,
``subclass`` and ``lookup(name)`` (`eslkit.event.Event`, the simulator's events).
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Iterable, Iterator, Optional, Protocol, Sequence

from eslkit.errors import UnknownEventName
from eslkit.event import EVENT_NAMES  # switch_event.c's names, ALL last

__all__ = [
    "EVENT_NAMES", "event_type", "event_words", "checked_event_words", "EventNames", "HeaderFilters", "Subscription",
    "MAX_FILTER_REGEX",
]

_KNOWN = frozenset(EVENT_NAMES)  # also what `event ALL` turns on (ALL itself included)

# eslkit's own bound, in every path alike: a regex filter runs on every event, and a
# simulated switch must not let one client's pattern stall the others.  FreeSWITCH has none.
MAX_FILTER_REGEX = 512


class SwitchEvent(Protocol):
    """What the rules read of an event."""

    event_name: str
    subclass: Optional[str]

    def lookup(self, name: str) -> Optional[str]: ...


def event_type(word: str) -> Optional[str]:
    """switch_name_event(): the event name a word means (case-insensitive, also with a
    ``SWITCH_EVENT_`` prefix), or None for a word the switch does not know."""
    up = word.upper()
    if up in _KNOWN:
        return up
    if len(up) > 13 and up[13:] in _KNOWN:
        return up[13:]
    return None


def event_words(values: Iterable[str]) -> list[str]:
    """What a user asks for (``--filter`` values, a library call's names) → the words of
    one ``event`` command, in the order the switch reads them.

    Commas or spaces separate.  The switch takes every word after CUSTOM as a
    subclass, so event names come first and CUSTOM with its subclasses last:
    ``CUSTOM sofia::register,CHANNEL_ANSWER`` → ``CHANNEL_ANSWER CUSTOM sofia::register``.
    A word with ``::`` is a subclass wherever it stands; after CUSTOM, a word that is
    no event name is one too.  Repeats are dropped; nothing given gives ``[]``.
    """
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    subclasses: list[str] = []
    custom = after_custom = False
    for value in values:
        for word in value.replace(",", " ").split():
            if word == "CUSTOM":
                custom = after_custom = True
            elif "::" in word or (after_custom and event_type(word) is None):
                custom = True
                if word not in subclasses:
                    subclasses.append(word)
            else:
                after_custom = False
                if word not in names:
                    names.append(word)
    return names + (["CUSTOM", *subclasses] if custom else [])


def checked_event_words(values: Iterable[str]) -> list[str]:
    """`event_words` for what a user typed (``--filter``): every event name must be one the
    switch knows, else `UnknownEventName` names the closest ("did you mean …?").  The switch
    would skip the typo — the events never come — or, with no name left, refuse the command.
    CUSTOM subclasses are the modules' own names and pass as they are."""
    words = event_words(values)
    unknown = [w for w in words[: words.index("CUSTOM") if "CUSTOM" in words else len(words)]
               if event_type(w) is None]
    if not unknown:
        return words
    guesses = {w: difflib.get_close_matches(w.upper(), EVENT_NAMES, n=1, cutoff=0.6) for w in unknown}
    what = "is not a FreeSWITCH event name" if len(unknown) == 1 else "are not FreeSWITCH event names"
    message = f"{', '.join(repr(w) for w in unknown)} {what}"
    hints = [g[0] if len(unknown) == 1 else f"{g[0]} for {w}" for w, g in guesses.items() if g]
    raise UnknownEventName(f"{message}; did you mean {', '.join(hints)}?" if hints else f"{message}.")


class EventNames:
    """What ``event``, ``nixevent`` and ``noevents`` leave on one connection: its
    event_list (``types``; ``ALL`` among them is event_list[SWITCH_EVENT_ALL])
    and its event_hash of CUSTOM subclasses."""

    __slots__ = ("on", "types", "_subclasses", "_every_subclass")

    def __init__(self) -> None:
        self.on = False  # LFLAG_EVENTS: the connection listens at all
        self.types: set[str] = set()
        # The subclass hash as a set, or (after `event ALL`, which takes every subclass the
        # switch has) as the subclasses taken out of "every one".
        self._subclasses: set[str] = set()
        self._every_subclass = False

    @property
    def all(self) -> bool:
        return "ALL" in self.types

    def has_subclass(self, subclass: str) -> bool:
        return (subclass in self._subclasses) != self._every_subclass

    def _take_subclass(self, subclass: str, wanted: bool) -> None:
        if wanted != self._every_subclass:
            self._subclasses.add(subclass)
        else:
            self._subclasses.discard(subclass)

    def event(self, words: Sequence[str]) -> int:
        """The words of ``event`` after the format; returns how many were event names
        (none: the switch answers ``-ERR no keywords supplied`` and changes nothing else)."""
        keys = 0
        for name, subclass in _keywords(words):
            if name is None:
                self._take_subclass(subclass, True)
                continue
            keys += 1
            if name == "ALL":
                self.types |= _KNOWN
                self._subclasses.clear()
                self._every_subclass = True
            self.types.add(name)
        if keys:
            self.on = True
        return keys

    def nixevent(self, words: Sequence[str]) -> int:
        """The words of ``nixevent``; returns how many were event names."""
        keys = 0
        for name, subclass in _keywords(words):
            if name is None:
                self._take_subclass(subclass, False)
                continue
            keys += 1
            if name == "ALL":
                self.types.clear()
            elif name != "CUSTOM":  # nixevent CUSTOM only starts the subclasses to take out
                # From "everything" to "everything but": every other name stays on.
                self.types.discard("ALL")
                self.types.discard(name)
        if keys:
            self.on = True
        return keys

    def noevents(self) -> bool:
        """Turn everything off; False if nothing was on (``-ERR not listening for events``)."""
        was = self.on
        self.on = False
        self.types.clear()
        self._subclasses.clear()
        self._every_subclass = False
        return was

    def wants(self, name: str, subclass: Optional[str]) -> bool:
        if not self.on:
            return False
        types = self.types
        if "ALL" in types:
            return True
        if name not in types:
            return False
        return name != "CUSTOM" or not subclass or self.has_subclass(subclass)


def _keywords(words: Sequence[str]) -> Iterator[tuple[Optional[str], Optional[str]]]:
    """The words of ``event``/``nixevent`` as the switch reads them: (event name, None) for
    each word switch_name_event() knows (the others are skipped) until CUSTOM, then
    (None, subclass) for every word after it."""
    custom = False
    for word in words:
        if custom:
            yield None, word
            continue
        name = event_type(word)
        if name is not None:
            yield name, None
            custom = custom or name == "CUSTOM"


class HeaderFilters:
    """The ``filter`` commands of one connection, in the order they were added."""

    __slots__ = ("items", "_rules")

    def __init__(self, filters: Iterable[tuple[str, str]] = ()):
        self.items: list[tuple[str, str]] = []
        self._rules: list[tuple[str, bool, Optional[str], Optional[re.Pattern], bool]] = []
        for header, value in filters:
            self.add(header, value)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, header: str, value: str) -> None:
        self.items.append((header, value))
        self._rules.append(_rule(header, value))

    def delete(self, header: str, value: Optional[str] = None) -> None:
        """``filter delete HEADER [VALUE]``: every filter on that header (any case), or only
        those with exactly that value; ``filter delete all`` removes every filter."""
        if header.lower() == "all":
            keep = []
        else:
            keep = [i for i, (h, v) in enumerate(self.items)
                    if not (h.lower() == header.lower() and (not value or v == value))]
        self.items = [self.items[i] for i in keep]
        self._rules = [self._rules[i] for i in keep]

    def command(self, args: str, limit: Optional[int] = None) -> str:
        """What follows ``filter `` on the wire, applied as mod_event_socket applies it;
        returns its Reply-Text.  ``limit``: refuse to keep more filters than that (an
        eslkit bound for the simulated switch; FreeSWITCH has none)."""
        name, sep, value = args.lstrip(" ").partition(" ")
        if name.lower() == "delete" and sep:
            name, sep, value = value.partition(" ")
            self.delete(name, value if sep else None)
            return f"+OK filter deleted. [{name}][{value if sep else ''}]"
        if not sep:
            return "-ERR invalid syntax"
        if name.lower() == "add":
            name, sep, value = value.partition(" ")
            if not sep:  # FreeSWITCH adds nothing and prints the missing value as (null)
                return f"+OK filter added. [{name}]=[(null)]"
        if limit is not None and len(self.items) >= limit:
            return f"-ERR too many filters (eslkit keeps at most {limit} per connection)"
        self.add(name, value)
        return f"+OK filter added. [{name}]=[{value}]"

    def passes(self, event: SwitchEvent) -> bool:
        """event_handler()'s filter loop: with no filter everything passes."""
        if not self._rules:
            return True
        send = False
        for header, positive, text, regex, regex_wanted in self._rules:
            if send and positive:
                continue  # already passing: only a negative filter can change that
            got = event.lookup(header)
            if got is None:
                continue
            if regex_wanted:
                matched = regex is not None and _pcre_match(regex, got)
            else:
                matched = _casefold(got) == text
            if matched:
                if not positive:
                    return False
                send = True
        return send


class Subscription:
    """Event names and header filters of one connection, and the one decision they make.

        sub = Subscription(["CHANNEL_ANSWER"], [("Call-Direction", "outbound")])
        sub.wants(event)          # what a real switch would send this connection

    ``names`` are what a user asks for (see `event_words`); none: no event at all.
    """

    __slots__ = ("names", "filters")

    def __init__(self, names: Iterable[str] = (), filters: Iterable[tuple[str, str]] = ()):
        self.names = EventNames()
        words = event_words(names)
        if words:
            self.names.event(words)
        self.filters = HeaderFilters(filters)

    @property
    def everything(self) -> bool:
        """Every event passes, without looking at it."""
        return self.names.all and not self.filters

    def wants(self, event: SwitchEvent) -> bool:
        return self.names.wants(event.event_name, event.subclass) and self.filters.passes(event)


# --- one filter ---------------------------------------------------------------------------


def _rule(header: str, value: str) -> tuple[str, bool, Optional[str], Optional[re.Pattern], bool]:
    """(header, positive, text to compare, regex, is a regex) for one filter."""
    positive = True
    i = 0
    while i < len(value) and value[i] in "+- ":  # the prefix: the last + or - counts
        if value[i] != " ":
            positive = value[i] == "+"
        i += 1
    if value.startswith("/"):  # only a value that *begins* with / is a regex (not -/x/)
        return header, positive, None, _filter_regex(value), True
    return header, positive, _casefold(value[i:]), None, False


@lru_cache(maxsize=1024)
def _filter_regex(value: str) -> Optional[re.Pattern]:
    """switch_regex_perform() of ``/pattern/flags``: None (never matches) when the
    closing ``/`` is missing or the pattern does not compile."""
    body = value[1:]
    end = body.rfind("/")
    if end < 0 or end > MAX_FILTER_REGEX:
        return None
    flags = 0
    options = body[end + 1:]
    if "i" in options:
        flags |= re.IGNORECASE
    if "s" in options:
        flags |= re.DOTALL
    try:
        return re.compile(body[:end], flags)
    except (re.error, RecursionError, OverflowError):
        return None


def _pcre_match(regex: re.Pattern, text: str) -> bool:
    m = regex.search(text)
    if m is None:
        return False
    if regex.groups < 10:
        return True
    # pcre_exec() with FreeSWITCH's 30-int ovector returns 0 — "no match" to the
    # filter — when a group numbered 10 or higher took part in the match.
    return all(m.start(g) < 0 for g in range(10, regex.groups + 1))


def _casefold(text: str) -> str:
    """strcasecmp's folding: ASCII letters only."""
    if text.isascii():
        return text.lower()
    return "".join(c.lower() if c.isascii() else c for c in text)
