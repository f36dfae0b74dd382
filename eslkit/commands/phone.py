"""``eslkit phone``: dial, hang up, transfer, hold, unhold or answer an agent's call."""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

import asyncio
import enum
import json
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from eslkit.commands.options import HostOpt, PasswordOpt, PortOpt, ProfileOpt, TimeoutOpt, connection_settings
from eslkit.control import Action, AuditLog, ControlError, Policy, Request, Result

phone = typer.Typer(
    name="phone",
    help="""Control an agent's phone from the computer: dial, hang up, transfer, hold, answer.

    Only the extension's own calls, as the call tracker sees them; each action
    waits for the switch's events that prove it happened (docs/phone.md).

    [bold]eslkit phone dial --ext 1001 6208[/]        (1001's phone rings, then 6208)
    [bold]eslkit phone transfer --ext 1001 1002[/]    (1001's caller goes to 1002)
    [bold]eslkit phone hold --ext 1001[/]             (then: phone unhold --ext 1001)
    [bold]eslkit phone hangup --ext 1001 --via mqtt://broker:1883[/]   (relay --control)
    """,
    no_args_is_help=True,
    rich_markup_mode="rich",
)

_CONTROL = "Control"


class Format(str, enum.Enum):
    text = "text"
    json = "json"


ExtOpt = Annotated[str, typer.Option("--ext", "-e", metavar="EXT", show_default=False,
                                     help="The agent's extension: only its own calls are touched.")]
UuidOpt = Annotated[Optional[str], typer.Option(
    "--uuid", metavar="UUID", show_default=False,
    help="Which call, when the extension has several (its leg or call uuid, as popup --format json shows).")]
ContextOpt = Annotated[Optional[str], typer.Option(
    "--context", metavar="CONTEXT", show_default=False, rich_help_panel=_CONTROL,
    help="Dialplan context for dial and transfer (default: the profile's context, else default).")]
AllowOpt = Annotated[Optional[List[str]], typer.Option(
    "--allow-dest", metavar="REGEX", show_default=False, rich_help_panel=_CONTROL,
    help="Also allow destinations matching this regular expression (whole value; repeatable). "
         "Digits, *, # and + up to 32 are always allowed; spaces, quotes, & , | {} never.")]
FormatOpt = Annotated[Format, typer.Option("--format", case_sensitive=False,
                                           help="text (one sentence) or json (the result object).")]
AuditOpt = Annotated[Optional[Path], typer.Option(
    "--audit", metavar="FILE", dir_okay=False, rich_help_panel=_CONTROL,
    help="Append the action to this audit log (JSON lines).")]
WaitOpt = Annotated[float, typer.Option(
    "--wait", min=0.1, rich_help_panel=_CONTROL,
    help="Seconds to wait for the switch's events that prove the action happened.")]
ViaOpt = Annotated[Optional[str], typer.Option(
    "--via", metavar="URL", show_default=False, rich_help_panel=_CONTROL,
    help="Send the request through `eslkit relay --control` on this broker (mqtt://… or amqp://…) "
         "instead of to the switch; broker password in ESLKIT_BROKER_PASSWORD.")]


def _run(request: Request, *, fmt: Format, context: Optional[str], allow: Optional[List[str]],
         endpoint: Optional[str] = None, audit: Optional[Path], wait: float, via: Optional[str],
         host, port, password, profile, timeout) -> None:
    """One action, then its sentence (or JSON) on stdout; a refusal is one line on stderr
    (and, with --format json, the failed result on stdout) and a distinct exit code."""
    if via is not None and (allow or context or endpoint or audit):
        raise typer.BadParameter("through a broker, eslkit relay --control has the destination rules, the "
                                 "context and the audit log.", param_hint="--via")
    log = None
    try:
        if via is not None:
            from eslkit.control.via import act_via_broker

            result = asyncio.run(act_via_broker(via, request, wait=wait))
        else:
            settings = connection_settings(host, port, password, profile, timeout)
            policy = Policy(patterns=tuple(allow or ()), context=context or settings.context or "default",
                            endpoint=endpoint)
            log = AuditLog(audit) if audit is not None else None
            from eslkit.app.phone import act_on_switch

            result = asyncio.run(act_on_switch(settings, request, policy=policy, audit=log, wait=wait))
    except ControlError as err:
        if fmt is Format.json:
            failed = getattr(err, "result", None) or Result(False, request.ext, request.action.value, str(err),
                                                            request.uuid, request.target, error=err.kind)
            _print(failed, fmt)
        raise
    finally:
        if log is not None:
            log.close()
    _print(result, fmt)


def _print(result: Result, fmt: Format) -> None:
    if fmt is Format.json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    else:
        from eslkit.safe_text import visible

        sys.stdout.write(visible(result.text, 500) + "\n")  # numbers and names come from the network
    sys.stdout.flush()


@phone.command()
def dial(
    number: Annotated[str, typer.Argument(metavar="NUMBER", help="The number to call.", show_default=False)],
    ext: ExtOpt,
    context: ContextOpt = None,
    allow_dest: AllowOpt = None,
    endpoint: Annotated[Optional[str], typer.Option(
        "--endpoint", metavar="TEMPLATE", show_default=False, rich_help_panel=_CONTROL,
        help="Bridge the far party to this endpoint instead of sending the number through the dialplan, "
             "e.g. sofia/gateway/pstn/{number}.")] = None,
    format: FormatOpt = Format.text,
    audit: AuditOpt = None,
    wait: WaitOpt = 10.0,
    via: ViaOpt = None,
    host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None, profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Click-to-dial: ring the agent's own phone, then the number once it answers.

    [bold]eslkit phone dial --ext 1001 6208[/]
    [bold]eslkit phone dial --ext 1001 6208 --context agents --format json[/]
    """
    _run(Request(ext, Action.dial, number), fmt=format, context=context, allow=allow_dest, endpoint=endpoint,
         audit=audit, wait=wait, via=via, host=host, port=port, password=password, profile=profile, timeout=timeout)


@phone.command()
def hangup(
    ext: ExtOpt,
    uuid: UuidOpt = None,
    cause: Annotated[Optional[str], typer.Option(
        "--cause", metavar="CAUSE", show_default=False, rich_help_panel=_CONTROL,
        help="FreeSWITCH hangup cause (default NORMAL_CLEARING), e.g. USER_BUSY.")] = None,
    format: FormatOpt = Format.text,
    audit: AuditOpt = None,
    wait: WaitOpt = 5.0,
    via: ViaOpt = None,
    host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None, profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Hang up the agent's call (ringing or answered).

    [bold]eslkit phone hangup --ext 1001[/]
    """
    _run(Request(ext, Action.hangup, uuid=uuid, cause=cause), fmt=format, context=None, allow=None, audit=audit,
         wait=wait, via=via, host=host, port=port, password=password, profile=profile, timeout=timeout)


@phone.command()
def transfer(
    destination: Annotated[str, typer.Argument(metavar="DEST", show_default=False,
                                               help="Where the caller goes (through the dialplan).")],
    ext: ExtOpt,
    uuid: UuidOpt = None,
    context: ContextOpt = None,
    allow_dest: AllowOpt = None,
    format: FormatOpt = Format.text,
    audit: AuditOpt = None,
    wait: WaitOpt = 5.0,
    via: ViaOpt = None,
    host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None, profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Blind transfer: send the party the agent talks to on to DEST; the agent's leg ends.

    [bold]eslkit phone transfer --ext 1001 1002[/]
    [bold]eslkit phone transfer --ext 1001 5000 --context support[/]
    """
    _run(Request(ext, Action.transfer, destination, uuid=uuid), fmt=format, context=context, allow=allow_dest,
         audit=audit, wait=wait, via=via, host=host, port=port, password=password, profile=profile, timeout=timeout)


def _simple(action: Action, doc: str):
    def command(
        ext: ExtOpt,
        uuid: UuidOpt = None,
        format: FormatOpt = Format.text,
        audit: AuditOpt = None,
        wait: WaitOpt = 5.0,
        via: ViaOpt = None,
        host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None, profile: ProfileOpt = None,
        timeout: TimeoutOpt = 5.0,
    ) -> None:
        _run(Request(ext, action, uuid=uuid), fmt=format, context=None, allow=None, audit=audit, wait=wait,
             via=via, host=host, port=port, password=password, profile=profile, timeout=timeout)

    command.__doc__ = doc
    command.__name__ = action.value
    phone.command(action.value)(command)


_simple(Action.hold, "Put the agent's answered call on hold (the other party hears hold music).\n\n"
                     "[bold]eslkit phone hold --ext 1001[/]")
_simple(Action.unhold, "Take the agent's call off hold.\n\n[bold]eslkit phone unhold --ext 1001[/]")
_simple(Action.answer, "Answer the agent's ringing call from the computer — only on phones that honour "
                       "FreeSWITCH's talk event (uuid_phone_event).\n\n[bold]eslkit phone answer --ext 1001[/]")
