"""``eslkit serve``: options → `eslkit.app.serve`."""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

from pathlib import Path
from typing import Annotated, Optional

import typer

from eslkit.app.popup import PopupEngine
from eslkit.app.runtime import run_on
from eslkit.calls import POPUP_EVENTS
from eslkit.commands.options import (AllowDestOpt, AuditOpt, ContactsOpt, ContextOpt, DayStartOpt, ExtHeaderOpt,
                                    HostOpt, OldMatchOpt, PasswordOpt, PopupFromOpt, PortOpt, ProfileOpt,
                                    ServiceLevelOpt, TargetOpt, TimeoutOpt, WarnWaitOpt, call_centre_stats,
                                    check_control_options, connection_settings, ext_header)
from eslkit.contacts import load_contacts
from eslkit.sources import EslSource, open_source


def serve(
    users: Annotated[Path, typer.Option(
        "--users", metavar="FILE", dir_okay=False,
        help="Who may log in and see which extension (make it with: eslkit passwd FILE NAME --ext EXT).")],
    listen: Annotated[Optional[str], typer.Option(
        "--listen", metavar="HOST:PORT",
        help="Where the pages are served (default 127.0.0.1:8080; beyond this machine only behind a TLS "
             "reverse proxy, see docs/serve.md).", show_default=False)] = None,
    from_url: PopupFromOpt = None,
    contacts: ContactsOpt = None,
    open_url: Annotated[Optional[str], typer.Option(
        "--open-url", metavar="TEMPLATE",
        help="The CRM link on each card, e.g. 'https://crm.example/search?phone={caller_number}' "
             "(values URL-encoded).")] = None,
    header: ExtHeaderOpt = None,
    match: OldMatchOpt = None,
    control: Annotated[bool, typer.Option(
        "--control", rich_help_panel="Phone control",
        help="Buttons on each card: hang up, hold/unhold, transfer, and a dial field; an agent acts only on "
             "its own extension's calls (on this switch connection, or with --from through eslkit relay "
             "--control).")] = False,
    allow_dest: AllowDestOpt = None,
    context: ContextOpt = None,
    audit: AuditOpt = None,
    service_level: ServiceLevelOpt = None,
    target: TargetOpt = 80.0,
    warn_wait: WarnWaitOpt = 60.0,
    day_start: DayStartOpt = "00:00",
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Each agent's screen popup as a live page in the browser, behind a login.

    Agents open http://HOST:PORT/agent/EXT: a card when the phone rings (caller,
    contact, queue, CRM link), the talk timer, how it ended, the day's calls;
    pushed as it happens. A CRM can read the same records from the JSON API and
    event stream (docs/serve.md). Supervisors get the wallboard (/wallboard) and
    Prometheus its metrics (/metrics).

    [bold]eslkit passwd users.txt alice --ext 1001[/]      (asks for alice's password)
    [bold]eslkit serve --users users.txt[/]
    [bold]eslkit serve --users users.txt --contacts contacts.csv[/]
    [bold]eslkit serve --users users.txt --open-url 'https://crm/?q={caller_number}'[/]
    [bold]eslkit serve --users users.txt --from mqtt://broker:1883[/]   (relay's states)
    [bold]eslkit serve --users users.txt --control --audit audit.jsonl[/]   (buttons)
    """
    from eslkit.actions import UrlAction
    from eslkit.app.popup_control import open_actor
    from eslkit.app.serve import ServeRun, parse_listen
    from eslkit.web.users import load_users

    check_control_options(control, from_url, allow_dest, context, audit)
    where = parse_listen(listen)
    stats = call_centre_stats(service_level, day_start)
    people = load_users(users)
    if open_url:
        UrlAction(open_url)  # a bad template is an error now, not at the first call
    lookup = load_contacts(contacts).lookup if contacts else None
    settings = connection_settings(host, port, password, profile, timeout) if from_url is None else None
    source = open_source(from_url=from_url, popup_exts=people.exts,
                         live=lambda: EslSource(settings, names=POPUP_EVENTS, reconnect=True))
    engine = PopupEngine(source, people.exts, match=ext_header(header, match, "serve"), lookup=lookup,
                         history=0)  # the pages show the board's day lists, not the panel's recent legs

    async def body() -> None:  # the source is open: the buttons' controller may use its connection
        actor = await open_actor(engine, people.exts, from_url=from_url, allow=allow_dest, context=context,
                                 audit=audit, settings=settings) if control else None
        await ServeRun(engine, people, listen=where, open_url=open_url, control=actor, stats=stats,
                       warn_wait=warn_wait, target=target / 100).run()

    run_on(source, body)
