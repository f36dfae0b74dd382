"""What MQTT and AMQP URLs share: their shape, the password kept out of them, and
how a URL is shown.

A broker password never comes from a URL (it would end up in the process list and
the shell history): from ``--password-env VAR``, ``?password_env=VAR`` in a
``--from`` URL, or ``ESLKIT_BROKER_PASSWORD``.
"""

from __future__ import annotations

import os
import shlex
import ssl
import sys
from urllib.parse import parse_qs, urlsplit, urlunsplit

from eslkit.errors import BrokerError

__all__ = ["PASSWORD_ENV", "connect_reason", "not_installed", "password_from_env", "safe_url", "split_broker_url", "split_query",
           "tls_context"]

PASSWORD_ENV = "ESLKIT_BROKER_PASSWORD"


def not_installed(what: str, requirement: str) -> BrokerError:
    """The broker library is missing: the fix installs it into the Python eslkit runs on
    (a .venv, pipx or the system), which ``pip install 'eslkit[mqtt]'`` would not."""
    return BrokerError(f"The {what} support is not installed in the Python eslkit runs on.",
                       f"{shlex.quote(sys.executable)} -m pip install '{requirement}'")


def connect_reason(exc: BaseException) -> str:
    """Why a broker could not be reached, in the system's words ("Connection refused"):
    asyncio's own message, "Connect call failed (host, port)", only repeats the URL."""
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.errno:  # SSL's are its own codes
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def tls_context(tls_ca: str | None) -> ssl.SSLContext:
    """The TLS context for mqtts:// and amqps://: the system's CAs, or the PEM file of --tls-ca."""
    try:
        return ssl.create_default_context(cafile=tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"Cannot use the CA file {tls_ca!r}: {exc}.", "Give a PEM file with --tls-ca.") from None


def password_from_env(var: str | None) -> str | None:
    """The broker password, read from the environment variable the user named."""
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise BrokerError(
            f"The environment variable {var}, named to hold the broker password, is not set.",
            f"export {var}=... (the broker password) before starting eslkit.",
        )
    return value


def safe_url(url: str) -> str:
    """The URL as it may be shown: any password in it replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "(the URL given)"


def split_broker_url(url: str, schemes: tuple[str, str], example: str):
    """Check a broker URL's shape; return (urlsplit parts, port or None, tls).

    ``schemes`` is (plain, tls), e.g. ("mqtt", "mqtts"); ``example`` is the
    form shown in the fix.  A password inside the URL is refused: it would end
    up in the process list and the shell history.
    """
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise BrokerError(f"{safe_url(url)!r} is not an {schemes[0].upper()} URL.", f"Write it as {example}.")
    if parts.password is not None:
        raise BrokerError(
            "The broker URL contains a password.",
            "Remove it from the URL and name an environment variable holding it with --password-env.",
        )
    try:
        port = parts.port
    except ValueError:
        raise BrokerError(f"The port in {safe_url(url)!r} is not a number.", f"Write it as {example}.") from None
    if not parts.hostname:
        raise BrokerError(f"{safe_url(url)!r} has no host.", f"Write it as {example}.")
    return parts, port, parts.scheme == schemes[1]


def split_query(url: str) -> tuple[str, dict[str, str]]:
    """A ``--from`` URL without its query, and the query's ``password_env`` / ``client_id``."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"password_env", "client_id"}
    if unknown:
        raise BrokerError(f"The broker URL has an unknown parameter {sorted(unknown)[0]!r}.",
                          "Only ?password_env=VAR and ?client_id=ID are understood.")
    return urlunsplit(parts._replace(query="")), query
