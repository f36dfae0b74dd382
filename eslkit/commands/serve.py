"""``eslkit serve``: options → `eslkit.app.serve`."""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer

from eslkit.app.popup import PopupEngine
from eslkit.calls import POPUP_EVENTS
from eslkit.commands.options import (AllowDestOpt, AuditOpt, ContactsOpt, ContextOpt, ExtHeaderOpt, HostOpt,
                                    OldMatchOpt, PasswordOpt, PopupFromOpt, PortOpt, ProfileOpt, TimeoutOpt,
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
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Each agent's screen popup as a live page in the browser, behind a login.

    Agents open http://HOST:PORT/agent/EXT: a card when the phone rings (caller, contact,
    queue, CRM link), the talk timer, how it ended, the day's calls; pushed as it happens.
    A CRM can read the same records from the JSON API and event stream (docs/serve.md).

    [bold]eslkit passwd users.txt alice --ext 1001[/]      (asks for alice's password)
    [bold]eslkit serve --users users.txt[/]
    [bold]eslkit serve --users users.txt --contacts contacts.csv --open-url 'https://crm.example/?phone={caller_number}'[/]
    [bold]eslkit serve --users users.txt --from mqtt://broker:1883[/]   (what eslkit relay publishes)
    [bold]eslkit serve --users users.txt --control --audit audit.jsonl[/]   (buttons: hang up, hold, transfer, dial)
    """
    from eslkit.actions import UrlAction
    from eslkit.app.popup_control import open_actor
    from eslkit.app.serve import ServeRun, parse_listen
    from eslkit.web.users import load_users

    check_control_options(control, from_url, allow_dest, context, audit)
    where = parse_listen(listen)
    people = load_users(users)
    if open_url:
        UrlAction(open_url)  # a bad template is an error now, not at the first call
    lookup = load_contacts(contacts).lookup if contacts else None
    settings = connection_settings(host, port, password, profile, timeout) if from_url is None else None
    source = open_source(from_url=from_url, popup_exts=people.exts,
                         live=lambda: EslSource(settings, names=POPUP_EVENTS, reconnect=True))
    engine = PopupEngine(source, people.exts, match=ext_header(header, match, "serve"), lookup=lookup)

    async def main() -> None:
        try:
            await source.open()
            actor = await open_actor(engine, people.exts, from_url=from_url, allow=allow_dest, context=context,
                                     audit=audit, settings=settings) if control else None
            await ServeRun(engine, people, listen=where, open_url=open_url, control=actor).run()
        finally:
            await source.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
