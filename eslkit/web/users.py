"""Who may open which page of ``eslkit serve``: the users file, its hashes, and the one
permission rule.

The file has one user a line, ``name:role:extensions:secret`` (``#`` starts a comment)::

    # eslkit serve --users users.txt     (made and updated with: eslkit passwd users.txt NAME ...)
    alice:agent:1001:scrypt$16384$8$1$<salt>$<hash>
    bob:agent:1002,1003:scrypt$16384$8$1$<salt>$<hash>
    crm-1001:agent:1001:sha256$<hex>
    sam:supervisor::scrypt$16384$8$1$<salt>$<hash>

- an **agent** sees the calls of the extensions on its line, and nothing else;
- a **supervisor** sees every extension the file names;
- the secret is a password hashed with scrypt (typed at the login page), or an API token
  kept as its SHA-256 (sent as ``Authorization: Bearer TOKEN`` by a CRM, or once at the
  login page).  Nothing in the file lets anyone log in without knowing the secret, and
  there is no default user.

`allowed(user, ext)` is the one place that decides whether a user may see an extension's
calls, and `may_act(user, ext)` whether, with ``--control``, the user's buttons may act on
them: only an agent whose own line names the extension (a supervisor watches, and does not
take an agent's calls out of their hands; docs/serve.md).  Whose *call* it is, is then
decided by `eslkit.control`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from eslkit.errors import InputFileError

__all__ = ["User", "Users", "allowed", "may_act", "valid_name", "hash_password", "hash_token", "new_token", "load_users",
           "save_user", "ROLES"]

ROLES = ("agent", "supervisor")
_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
_EXT = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
# scrypt's cost: 16 MiB and ~50 ms a check on a small VM (OWASP's minimum is N=2^17 with r=8
# for a server with memory to spare; 2^14 keeps 20 agents logging in at 9:00 under a second).
_N, _R, _P = 2 ** 14, 8, 1
_MAXMEM = 64 * 1024 * 1024
_FIX = "Each line is name:role:extensions:secret; make or update lines with `eslkit passwd FILE NAME`."


@dataclass(frozen=True)
class User:
    name: str
    role: str  # agent | supervisor
    exts: tuple  # an agent's extensions (a supervisor's are ignored: it sees all)
    secret: str  # scrypt$... (a password) or sha256$... (a token)

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"

    def home(self) -> str:
        """Where the user lands after logging in."""
        return "/" if self.supervisor or len(self.exts) != 1 else f"/agent/{self.exts[0]}"

    def check_password(self, password: str) -> bool:
        return self.secret.startswith("scrypt$") and _scrypt_matches(self.secret, password)


def allowed(user: Optional[User], ext: str, watched: Iterable[str]) -> bool:
    """May ``user`` see the calls of ``ext``?"""
    if user is None or ext not in set(watched):
        return False
    return user.supervisor or ext in user.exts


def may_act(user: Optional[User], ext: str, watched: Iterable[str]) -> bool:
    """May ``user`` (with --control) hang up, hold, transfer the calls of ``ext`` and dial as
    ``ext``?  Only as that extension's own agent: a supervisor's role is to see."""
    return allowed(user, ext, watched) and not user.supervisor and ext in user.exts


class Users:
    """The users of one file, by name and by token hash."""

    def __init__(self, users: Iterable[User]):
        self.by_name: dict[str, User] = {}
        self._by_token: dict[str, User] = {}
        for user in users:
            self.by_name[user.name] = user
            if user.secret.startswith("sha256$"):
                self._by_token[user.secret] = user
        # The extensions serve follows: every one an agent line names.
        exts: list[str] = []
        for user in self.by_name.values():
            exts += [ext for ext in user.exts if ext not in exts]
        self.exts = tuple(exts)

    def __len__(self) -> int:
        return len(self.by_name)

    def get(self, name: str) -> Optional[User]:
        return self.by_name.get(name)

    def with_token(self, token: str) -> Optional[User]:
        """The user this API token belongs to (a dict lookup: tokens are long and random,
        so their plain SHA-256 is safe to keep and quick to check)."""
        if not token or len(token) > 512:
            return None
        return self._by_token.get(hash_token(token))

    def login(self, name: str, password: str) -> Optional[User]:
        """The user, when the password is right; the same work is done for an unknown name,
        so that the time taken does not tell which names exist."""
        user = self.by_name.get(name)
        if user is None or not user.secret.startswith("scrypt$"):
            _scrypt_matches(_dummy(), password)
            return None
        return user if user.check_password(password) else None


# --- secrets -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def _scrypt_matches(stored: str, password: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.lru_cache(maxsize=None)
def _dummy() -> str:
    """A hash nobody's password matches, for the same work on an unknown name (made once)."""
    return hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- the file ----------------------------------------------------------------------------


def valid_name(name: str) -> bool:
    """A login name: letters, digits and _ . @ + - (never ':', the file's separator)."""
    return bool(_NAME.match(name))


def parse_line(line: str, where: str) -> Optional[User]:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split(":")
    if len(parts) != 4:
        raise InputFileError(f"{where}: expected name:role:extensions:secret, found {len(parts)} field(s).", _FIX)
    name, role, exts_text, secret = (part.strip() for part in parts)
    if not valid_name(name):
        raise InputFileError(f"{where}: the name {name[:40]!r} may hold only letters, digits and _ . @ + -.", _FIX)
    if role not in ROLES:
        raise InputFileError(f"{where}: the role of {name} is {role[:20]!r}, not agent or supervisor.", _FIX)
    exts = tuple(ext.strip() for ext in exts_text.split(",") if ext.strip())
    bad = [ext for ext in exts if not _EXT.match(ext)]
    if bad:
        raise InputFileError(f"{where}: {bad[0][:40]!r} is not an extension.", _FIX)
    if role == "agent" and not exts:
        raise InputFileError(f"{where}: the agent {name} has no extension.", "Give it one: " + _FIX)
    if not (secret.startswith("scrypt$") and secret.count("$") == 5 or
            re.fullmatch(r"sha256\$[0-9a-f]{64}", secret)):
        raise InputFileError(f"{where}: the secret of {name} is not a hash eslkit made "
                             "(a plain password never goes in this file).", _FIX)
    return User(name, role, exts, secret)


def load_users(path: Path, *, need_agents: bool = True) -> Users:
    """Read a users file; an `InputFileError` for anything unusable (exit code 11)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"There is no users file {str(path)!r}.",
                             f"Make one with: eslkit passwd {path} NAME --ext EXT") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"Cannot read the users file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}.",
                             "Check the path and its permissions.") from None
    users: list[User] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        user = parse_line(line, f"{path}, line {number}")
        if user is None:
            continue
        if user.name in seen:
            raise InputFileError(f"{path}, line {number}: {user.name} is in the file twice.", _FIX)
        seen.add(user.name)
        users.append(user)
    loaded = Users(users)
    if need_agents and not loaded.exts:
        raise InputFileError(f"The users file {str(path)!r} gives no agent and no extension.",
                             f"Add one: eslkit passwd {path} NAME --ext EXT")
    return loaded


def save_user(path: Path, user: User) -> bool:
    """Add ``user`` to the file, or replace its line (the other lines and comments stay as
    they are); the file is written whole to a temporary file and moved into place, readable
    by its owner only.  True when the user was new."""
    path = Path(path)
    lines: list[str] = []
    if path.exists():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(f"Cannot read the users file {str(path)!r}: {exc}.", "Check its permissions.") from None
    else:
        lines = ["# eslkit serve --users FILE: one user a line, name:role:extensions:secret",
                 "# (secrets are hashes; add or change users with: eslkit passwd FILE NAME ...)"]
    line = f"{user.name}:{user.role}:{','.join(user.exts)}:{user.secret}"
    new = True
    for i, old in enumerate(lines):
        if old.strip().split(":", 1)[0] == user.name and not old.lstrip().startswith("#"):
            lines[i] = line
            new = False
    if new:
        lines.append(line)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent or "."))
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise InputFileError(f"Cannot write the users file {str(path)!r}: {exc.strerror or exc}.",
                             "Check that its folder is writable.") from None
    return new
