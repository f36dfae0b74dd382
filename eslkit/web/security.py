"""Sessions, CSRF tokens and the brake on failed logins for ``eslkit serve``.  Pure.

- A session is a signed cookie: ``<payload>.<HMAC-SHA256>``, the payload holding the
  user's name, a random session id and when it expires.  The key is made at start-up
  (so a restart logs everybody out) unless ``ESLKIT_SESSION_KEY`` gives one.  The cookie
  is HttpOnly and SameSite=Strict (and Secure over HTTPS): page scripts cannot read it
  and other sites' pages cannot send it.
- A CSRF token is the HMAC of the session id: a form or a ``fetch`` of our own page
  carries it (``X-CSRF-Token``), another site cannot know it.
- `LoginBrake` counts failed logins per client address and per name over a window, and
  refuses further tries for the rest of the window once there were too many.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Session", "Signer", "LoginBrake", "session_key", "same"]

KEY_ENV = "ESLKIT_SESSION_KEY"
SESSION_SECONDS = 12 * 3600  # a working day; then log in again


def session_key() -> bytes:
    """``ESLKIT_SESSION_KEY`` (so that sessions survive a restart), else a fresh random key."""
    given = os.environ.pop(KEY_ENV, "")  # read once, then out of the environment
    if given:
        return hashlib.sha256(given.encode("utf-8")).digest()
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class Session:
    name: str
    sid: str
    expires: float


def same(a: Optional[str], b: Optional[str]) -> bool:
    """Constant-time equality of two strings from anywhere (any characters, or None)."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks session cookies and CSRF tokens with one key."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time, lifetime: float = SESSION_SECONDS):
        self._key = key
        self.clock = clock
        self.lifetime = lifetime
        self._ended: dict[str, float] = {}  # sessions logged out, until they would expire

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}:{data}".encode("utf-8"), hashlib.sha256).digest())

    def new_session(self, name: str) -> tuple[Session, str]:
        """A session for ``name`` and its cookie value."""
        session = Session(name, secrets.token_urlsafe(16), float(int(self.clock() + self.lifetime)))
        payload = _b64(json.dumps([session.name, session.sid, int(session.expires)]).encode("utf-8"))
        return session, f"{payload}.{self._mac('session', payload)}"

    def session(self, cookie: Optional[str]) -> Optional[Session]:
        """The session a cookie holds, or None (missing, forged, damaged or expired)."""
        if not cookie or len(cookie) > 1024 or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not same(mac, self._mac("session", payload)):
            return None
        try:
            name, sid, expires = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        if not isinstance(name, str) or not isinstance(sid, str) or not isinstance(expires, int):
            return None
        if expires < self.clock() or sid in self._ended:
            return None
        return Session(name, sid, float(expires))

    def end(self, session: Session) -> None:
        """Log a session out: its cookie is refused from now on, even a copy of it."""
        now = self.clock()
        self._ended = {sid: until for sid, until in self._ended.items() if until >= now}
        self._ended[session.sid] = session.expires

    def csrf(self, sid: str) -> str:
        return self._mac("csrf", sid)

    def csrf_ok(self, sid: str, token: Optional[str]) -> bool:
        return bool(token) and same(token, self.csrf(sid))


class LoginBrake:
    """At most ``tries`` failed logins per client address, and per name, in ``window``
    seconds; then `wait()` says how long until the next try is heard."""

    def __init__(self, tries: int = 5, window: float = 300.0, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000):
        self.tries = tries
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, deque] = {}

    def _recent(self, key: str, now: float) -> deque:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def wait(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self.clock()
        longest = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self.tries:
                longest = max(longest, failures[0] + self.window - now)
        return longest

    def failed(self, *keys: str) -> None:
        now = self.clock()
        if len(self._failures) >= self.max_keys:  # a flood of names: forget the oldest
            for key in list(self._failures)[: self.max_keys // 10]:
                del self._failures[key]
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.tries)).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
