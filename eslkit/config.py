"""Where a command finds the switch: options, environment and profiles.

Profiles come from eslkit's own ``~/.config/eslkit/config.toml``::

    [profiles.pbx1]
    host = "10.0.0.5"
    port = 8021
    password = "s3cret"
    context = "agents"      # optional: the dialplan context of `eslkit phone` (default: default)

and, so that fs_cli users need to change nothing, from fs_cli's own files
(``~/.fs_cli_conf``, else ``/etc/fs_cli.conf`` — the order fs_cli uses), whose
sections are profile names and whose keys are fs_cli's ``host``, ``port`` and
``password`` (``key => value``)::

    [pbx1]
    host => 10.0.0.5
    password => s3cret

Precedence: an explicit option beats the profile, the profile beats the
built-in default.  For the password: ``--password``, then ``ESL_PASSWORD``,
then the profile, then ``ClueCon``.  Without ``--profile`` a profile named
``default`` is used if one exists, as fs_cli does.

This module never prints: problems worth telling the user about are returned
as ``ConnectionSettings.warnings`` for the command to show.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from eslkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8021
DEFAULT_PASSWORD = "ClueCon"
DEFAULT_TIMEOUT = 5.0
DEFAULT_PROFILE = "default"
PASSWORD_ENV = "ESL_PASSWORD"
SYSTEM_FS_CLI_CONF = Path("/etc/fs_cli.conf")

_MASK = "******"


def eslkit_config_path(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "eslkit" / "config.toml"


def fs_cli_config_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    """fs_cli reads ``$HOME/.fs_cli_conf`` and, only when that cannot be opened, /etc/fs_cli.conf."""
    home = env.get("HOME") or str(Path.home())
    return [Path(home) / ".fs_cli_conf", SYSTEM_FS_CLI_CONF]


@dataclass(frozen=True)
class Profile:
    """One named profile, as found in a file.  ``None`` means the file did not say."""

    name: str
    source: Path
    host: Optional[str] = None
    port: Optional[int] = None
    password: Optional[str] = field(default=None, repr=False)
    context: Optional[str] = None  # the dialplan context phone control dials and transfers in

    def __repr__(self) -> str:
        pw = None if self.password is None else _MASK
        return (
            f"Profile(name={self.name!r}, source={str(self.source)!r}, host={self.host!r}, "
            f"port={self.port!r}, password={pw!r}, context={self.context!r})"
        )


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to open an event-socket connection."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    profile: Optional[str] = None
    password_source: str = "default"  # "option", "env", "profile" or "default"
    warnings: tuple = ()
    context: Optional[str] = None  # the profile's dialplan context for phone control, if it says

    def __repr__(self) -> str:
        return (
            f"ConnectionSettings(host={self.host!r}, port={self.port!r}, password={_MASK!r}, "
            f"timeout={self.timeout!r}, profile={self.profile!r}, "
            f"password_source={self.password_source!r})"
        )

    __str__ = __repr__

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# --- reading files ------------------------------------------------------------------


def read_eslkit_config(path: Path) -> dict[str, Profile]:
    """Profiles from an eslkit TOML file; a missing file has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from exc
    try:
        doc = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}).") from None
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] sections.")
    out: dict[str, Profile] = {}
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [profiles.{name}] must be a table with host, port, password.")
        unknown = set(table) - {"host", "port", "password", "context"}
        if unknown:
            raise ConfigError(
                f"{path}: [profiles.{name}] has unknown key(s) {', '.join(sorted(unknown))}.",
                "Use only host, port, password and context.",
            )
        host, port, password = table.get("host"), table.get("port"), table.get("password")
        context = table.get("context")
        if context is not None and (not isinstance(context, str) or not context):
            raise ConfigError(f"{path}: [profiles.{name}] context must be a non-empty string.")
        if host is not None and (not isinstance(host, str) or not host):
            raise ConfigError(f"{path}: [profiles.{name}] host must be a non-empty string.")
        if password is not None and not isinstance(password, str):
            raise ConfigError(f"{path}: [profiles.{name}] password must be a string (quote it).")
        out[name] = Profile(name, path, host, _port(port, path, name), password, context)
    return out


def read_fs_cli_config(path: Path) -> dict[str, Profile]:
    """Profiles from an fs_cli config file (esl_config format: ``[section]``, ``key => value``).

    Like fs_cli: keys are case-insensitive, ``#`` and ``;`` start comments,
    unknown keys (debug, loglevel, key_F1 …) are ignored and a bad port is ignored.
    """
    try:
        text = path.read_text("utf-8", "replace")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from exc
    out: dict[str, dict] = {}
    section: Optional[str] = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and "]" in line:
            section = line[1: line.index("]")].strip()
            out.setdefault(section, {})
            continue
        if section is None:
            continue
        if "=>" in line:
            key, _, value = line.partition("=>")
        else:
            key, sep, value = line.partition("=")
            if not sep:
                continue
        key, value = key.strip().lower(), value.strip()
        if key == "host":
            out[section]["host"] = value
        elif key == "password":
            out[section]["password"] = value
        elif key == "port":
            try:
                port = int(value)
            except ValueError:
                continue
            if 0 < port < 65536:
                out[section]["port"] = port
    return {name: Profile(name, path, **values) for name, values in out.items()}


def _port(value: object, path: Path, name: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{path}: [profiles.{name}] port must be a number from 1 to 65535.")
    return value


def load_profiles(env: Mapping[str, str] = os.environ, *,
                  broken: Optional[list] = None) -> dict[str, Profile]:
    """Every profile, eslkit's own first; a name defined twice keeps the first.

    A config.toml that cannot be read raises `ConfigError`, or, given a ``broken``
    list, is put there and contributes no profiles.
    """
    try:
        profiles = dict(read_eslkit_config(eslkit_config_path(env)))
    except ConfigError as exc:
        if broken is None:
            raise
        broken.append(exc)
        profiles = {}
    for path in fs_cli_config_paths(env):
        found = read_fs_cli_config(path)
        if path.exists():
            for name, prof in found.items():
                profiles.setdefault(name, prof)
            break  # fs_cli reads only the first file it can open
    return profiles


def _readable_by_others(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(stat.S_IMODE(mode) & (stat.S_IRGRP | stat.S_IROTH))


# --- putting it together --------------------------------------------------------------


def resolve(
    host: Optional[str] = None,
    port: Optional[int] = None,
    password: Optional[str] = None,
    profile: Optional[str] = None,
    timeout: Optional[float] = None,
    *,
    password_from_command_line: bool = False,
    env: Mapping[str, str] = os.environ,
) -> ConnectionSettings:
    """Combine options, ``ESL_PASSWORD`` and the profile into `ConnectionSettings`.

    ``password`` is the value of ``--password`` (``ESL_PASSWORD`` is read here
    from `env`); ``password_from_command_line`` says it was typed as an option,
    which earns a warning about the process list.
    """
    warnings: list[str] = []
    broken: list[ConfigError] = []
    profiles = load_profiles(env, broken=broken)
    if broken and profile is not None:
        raise broken[0]  # the profile asked for may be the one the damage hides
    for exc in broken:  # a run that asks for no profile still works: say it, go on
        warnings.append(f"{exc} Its profiles are not used; {exc.fix[0].lower()}{exc.fix[1:]}")
    prof: Optional[Profile] = None
    if profile is not None:
        prof = profiles.get(profile)
        if prof is None:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"There is no profile named {profile!r} (known profiles: {known}).",
                f"Add [profiles.{profile}] to {eslkit_config_path(env)} or a [{profile}] "
                "section to ~/.fs_cli_conf.",
            )
    else:
        prof = profiles.get(DEFAULT_PROFILE)

    if password is not None:
        source = "option" if password_from_command_line else "env"
    elif env.get(PASSWORD_ENV):
        password, source = env[PASSWORD_ENV], "env"
    elif prof is not None and prof.password is not None:
        password, source = prof.password, "profile"
    else:
        password, source = DEFAULT_PASSWORD, "default"

    if source == "option":
        warnings.append(
            "--password on the command line is visible to other users in the process list; "
            f"prefer the {PASSWORD_ENV} environment variable or a profile in "
            f"{eslkit_config_path(env)} (chmod 600)."
        )
    # The file this run takes its profile from should be private if it holds a password
    # (even when ESL_PASSWORD wins this time); files this run does not use are not its business.
    used = prof.source if prof is not None else None
    if used is not None and any(p.source == used and p.password is not None for p in profiles.values()):
        if _readable_by_others(used):
            warnings.append(f"{used} holds a password and is readable by other users; run: chmod 600 {used}")
    return ConnectionSettings(
        host=host or (prof.host if prof and prof.host else DEFAULT_HOST),
        port=port or (prof.port if prof and prof.port else DEFAULT_PORT),
        password=password,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        profile=prof.name if prof else None,
        password_source=source,
        warnings=tuple(warnings),
        context=prof.context if prof else None,
    )
