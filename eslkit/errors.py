"""One exception family for the whole library.

Every user-facing failure is an ``EslkitError`` carrying one clear sentence
(``str(err)``), the fix (``err.fix``) and a distinct process exit code
(``err.exit_code``).  The CLI prints the first two and exits with the third;
the library never imports typer.  Programming errors still raise ordinary
exceptions.
"""

from __future__ import annotations


class EslkitError(Exception):
    """Base class: a failure a user can do something about."""

    exit_code = 1
    default_fix = ""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = self.default_fix if fix is None else fix


# --- the event socket -------------------------------------------------------


class ConnectError(EslkitError):
    """Could not reach the switch at all."""

    exit_code = 3
    default_fix = "Check --host/--port and that mod_event_socket is loaded (fs_cli: 'module_exists mod_event_socket')."


class ConnectionRefused(ConnectError):
    exit_code = 3


class ConnectTimeout(ConnectError):
    exit_code = 4
    default_fix = "Check that the host is reachable and the port is not firewalled, or raise --timeout."


class AuthError(EslkitError):
    """The switch said -ERR invalid to our password."""

    exit_code = 5
    default_fix = "Give the password from event_socket.conf.xml with ESL_PASSWORD, --profile or --password."


class AclRejected(EslkitError):
    """The switch answered with text/rude-rejection."""

    exit_code = 6
    default_fix = "Add this machine's address to the apply-inbound-acl list in event_socket.conf.xml."


class Disconnected(EslkitError):
    """The switch closed the connection (disconnect notice or EOF)."""

    exit_code = 7
    default_fix = "The switch may be restarting; eslkit reconnects by itself unless --no-reconnect is given."


class ProtocolError(EslkitError):
    """The peer sent bytes that are not the event-socket protocol."""

    exit_code = 8
    default_fix = "Check that --port points at mod_event_socket (default 8021), not SIP or HTTP."

    def __init__(self, message: str, fix: str | None = None, frames: tuple = ()):
        super().__init__(message, fix)
        self.frames = list(frames)  # whole frames the parser read before the bad bytes


class FrameTooLarge(ProtocolError):
    exit_code = 8


class LocalProtocolError(EslkitError, ValueError):
    """We were asked to send something the protocol cannot carry safely."""

    exit_code = 2
    default_fix = "Remove newlines and carriage returns from commands and header values."


class UnknownEventName(EslkitError, ValueError):
    """A --filter name that is not one of FreeSWITCH's events (a typo): refused before
    subscribing, as the switch would ignore it (or refuse the whole command)."""

    exit_code = 2
    default_fix = "Event names are FreeSWITCH's (CHANNEL_ANSWER, CHANNEL_HANGUP_COMPLETE, …, ALL); subclasses follow CUSTOM: 'CUSTOM sofia::register'."


class CommandTimeout(EslkitError):
    exit_code = 9
    default_fix = "The switch is overloaded or the command blocks; raise --timeout or use bgapi."


class CommandError(EslkitError):
    """The switch answered a command with -ERR."""

    exit_code = 10
    default_fix = ""


# --- files and configuration --------------------------------------------------


class InputFileError(EslkitError):
    """A recording, transcript, scenario or contacts file that cannot be used."""

    exit_code = 11
    default_fix = "Check the path and that the file is an eslkit recording (JSON lines) or a raw ESL transcript."


class ConfigError(EslkitError):
    exit_code = 12
    default_fix = "Correct that file, or move it away."


class TemplateError(EslkitError):
    """An `eslkit popup` --open-url or --exec template that cannot be used."""

    exit_code = 14
    default_fix = "The fields are listed under Actions in docs/popup.md."


class ListenError(EslkitError):
    """`eslkit sim` cannot listen on the address it was given."""

    exit_code = 15
    default_fix = "Choose a free --port (--port 0 takes any free one) or another --host."


class OutputError(EslkitError):
    """Events cannot be written out: a full disk or an I/O error on --record or standard output."""

    exit_code = 17
    default_fix = "Free some disk space (or raise the quota), or send the output to another disk."


# --- the broker ---------------------------------------------------------------


class BrokerError(EslkitError):
    exit_code = 13
    default_fix = "Check the broker URL, that the broker runs, and its credentials."


class DeliveryIncomplete(BrokerError):
    """`eslkit relay` ended with messages dropped or never confirmed by the broker."""

    exit_code = 16
    default_fix = ("Raise --buffer-bytes (and --buffer), keep the broker reachable, or give it longer with "
                   "--drain-timeout.")


# --- the build ----------------------------------------------------------------


class BuildError(EslkitError):
    """Base of every `eslkit build` failure; subclasses pick the exit code."""

    exit_code = 20


class NotAFreeSwitchTree(BuildError):
    exit_code = 21
    default_fix = "Point --src at the top of a FreeSWITCH source tree (the folder holding configure.ac and libs/)."


class EslSourcesMissing(BuildError):
    exit_code = 22
    default_fix = "Unpack the complete FreeSWITCH source (libs/esl ships with it) or point --src at another tree."


class ToolMissing(BuildError):
    """swig (missing or older than 4), gcc, g++ or make."""

    exit_code = 23
    default_fix = "apt-get install swig build-essential (or: pip install swig), or give --swig PATH."


class PythonHeadersMissing(BuildError):
    """The target interpreter cannot be run, or has no Python.h."""

    exit_code = 24
    default_fix = "Install the headers of the target Python (apt-get install python3.X-dev), or choose another --python."


class TreeNotConfigured(BuildError):
    exit_code = 25
    default_fix = "Run ./bootstrap.sh && ./configure in the tree first, or use --mode standalone."


class TreeMoved(BuildError):
    exit_code = 26
    default_fix = "Re-run ./configure in the tree's new location, or use --mode standalone."


class TreeNotWritable(BuildError):
    """Read-only tree, a tree owned by another user, or an output that cannot be written."""

    exit_code = 27
    default_fix = "Run eslkit as the tree's owner, make it writable (chmod u+w), or copy the tree somewhere writable."


class BuildStepFailed(BuildError):
    """A swig, compiler or make step exited non-zero; the message holds its tail."""

    exit_code = 28
    default_fix = "Read the lines above and the full log (--log FILE); `eslkit doctor` checks the toolchain."


class EslModuleInTheWay(BuildError):
    """`eslkit build --pure` would replace, shadow or be shadowed by another ESL module."""

    exit_code = 30
    default_fix = "New code can use `from eslkit import ESL`, which needs no `import ESL` at all."


class EslkitNotInTarget(BuildError):
    """`eslkit build --pure` for an interpreter that cannot import eslkit."""

    exit_code = 31
    default_fix = "Install eslkit into that interpreter (PYTHON -m pip install eslkit), or leave out --python."


class VerifyFailed(BuildError):
    """The built module does not import, or --check could not run `api status`."""

    exit_code = 29
    default_fix = "Run `eslkit doctor --python PATH`; rebuild with the interpreter that will import ESL."


# --- phone control (eslkit.control) -------------------------------------------------


class ControlError(EslkitError):
    """A phone-control request that was not carried out; ``kind`` names why (the audit log
    and a broker reply say it), ``result`` (set by the controller) is the failed result."""

    exit_code = 40
    kind = "failed"


class NotAllowed(ControlError):
    """The call (or uuid) named is not one of this extension's calls right now."""

    exit_code = 41
    kind = "not_allowed"
    default_fix = "Act only on your own calls; `eslkit popup --ext EXT --format json` shows them with their uuids."


class NoCall(ControlError):
    """The extension has no call the action fits, or several and none was named."""

    exit_code = 42
    kind = "no_call"


class BadNumber(ControlError):
    """A number, destination, context or extension that must not reach an api line."""

    exit_code = 43
    kind = "bad_number"
    default_fix = "Give digits, *, # or + only (or a pattern allowed with --allow-dest)."


class SwitchRefused(ControlError):
    """The switch answered a phone-control command with -ERR."""

    exit_code = 44
    kind = "refused_by_switch"


class ActionTimeout(ControlError):
    """The switch took the command, but no event proved it happened in time."""

    exit_code = 45
    kind = "timeout"
    default_fix = "Check the call on the switch (fs_cli: show channels); raise --wait if it is slow."


class NoReply(ActionTimeout):
    """Through a broker: no relay answered the request."""

    exit_code = 46
    kind = "no_reply"
    default_fix = ("Check that `eslkit relay --control` runs against this broker, and that the broker's ACL "
                   "lets this user publish to its control topic (docs/phone.md).")


class RequestRefused(ControlError):
    """A request that was not looked at: through a broker not a request or too old
    (``expired``); from any way in, one too many (``rate_limited``, `eslkit.control.limit`)."""

    exit_code = 47

    def __init__(self, kind: str, message: str, fix: str = "", *, retry_after: float | None = None):
        super().__init__(message, fix)
        self.kind = kind
        self.retry_after = retry_after  # rate_limited: seconds until the next request would be taken

