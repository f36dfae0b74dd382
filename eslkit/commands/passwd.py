"""``eslkit passwd``: add a user to an ``eslkit serve`` users file, or change one (like htpasswd)."""

# No `from __future__ import annotations` here: typer reads these signatures at run time.

import getpass
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from eslkit.commands.options import parse_exts
from eslkit.errors import InputFileError


def passwd(
    file: Annotated[Path, typer.Argument(metavar="FILE", dir_okay=False, help="The users file (made if missing).")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="The login name.")],
    ext: Annotated[Optional[List[str]], typer.Option(
        "--ext", "-e", metavar="EXT", help="The extension(s) whose calls this user sees (repeat, or 1001,1002).")] = None,
    supervisor: Annotated[bool, typer.Option(
        "--supervisor", help="A supervisor: sees every extension of the file.")] = False,
    token: Annotated[bool, typer.Option(
        "--token", help="Make an API token (printed once) instead of asking for a password: for a CRM "
                        "that reads the JSON API with Authorization: Bearer TOKEN.")] = False,
) -> None:
    """Add a user to an eslkit serve users file, or give one a new password or extensions.

    The password is asked for twice (or read from standard input when it is not a
    terminal) and only its scrypt hash is written; the file is readable by its owner only.

    [bold]eslkit passwd users.txt alice --ext 1001[/]
    [bold]eslkit passwd users.txt sam --supervisor[/]
    [bold]eslkit passwd users.txt crm-1001 --ext 1001 --token[/]
    """
    from eslkit.web.users import (User, hash_password, hash_token, load_users, new_token, parse_line, save_user,
                                  valid_name)

    exts = tuple(parse_exts(ext)) if ext else ()
    role = "supervisor" if supervisor else "agent"
    # Everything that can be wrong is said before a password is typed: the name, and a FILE
    # that is not a users file (contacts.csv, /etc/passwd) or has no folder.
    if not valid_name(name):
        raise typer.BadParameter(f"{name[:40]!r} may hold only letters, digits and _ . @ + -.", param_hint="NAME")
    if file.exists():
        try:
            users = load_users(file, need_agents=False)
        except InputFileError as exc:
            raise InputFileError(str(exc), "eslkit passwd writes only to a users file of eslkit serve: give the name "
                                           "of a new file, or correct that line.") from None
    elif not file.parent.is_dir():
        raise InputFileError(f"There is no folder {str(file.parent)!r} for the users file.",
                             "Create the folder first, or give a path in one that exists.")
    else:
        users = None
    if not exts and not supervisor:
        known = users.get(name) if users is not None else None
        if known is not None:  # a new password for a user already there keeps its extensions
            exts, role = known.exts, known.role
        if not exts and role == "agent":
            raise typer.BadParameter("give the agent's extension, e.g. --ext 1001", param_hint="--ext")
    secret_text = None
    if token:
        secret_text = new_token()
        secret = hash_token(secret_text)
    else:
        secret = hash_password(_ask_password(name))
    user = User(name, role, exts, secret)
    parse_line(f"{name}:{role}:{','.join(exts)}:{secret}", "the new line")  # the same checks as serve's
    new = save_user(file, user)
    typer.echo(f"eslkit passwd: {'added' if new else 'updated'} {name} ({role}"
               f"{', ' + ','.join(exts) if exts else ''}) in {file}.", err=True)
    if secret_text is not None:
        typer.echo(secret_text)
        typer.echo("eslkit passwd: that token is shown only now: give it to the program as "
                   "Authorization: Bearer TOKEN.", err=True)


def _ask_password(name: str) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise InputFileError("No password on standard input.",
                                 f"Type it at a terminal, or pipe it in: printf '%s\\n' \"$PW\" | eslkit passwd FILE {name}")
        password = line.rstrip("\r\n")
    else:
        try:
            password = getpass.getpass(f"Password for {name}: ")
            again = getpass.getpass("Again: ")
        except (EOFError, KeyboardInterrupt) as exc:  # Ctrl-D or Ctrl-C at the prompt
            sys.stderr.write("\n")  # end the prompt's line: what follows starts on its own
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise InputFileError("No password was typed; the file is unchanged.",
                                 f"Run eslkit passwd again and type {name}'s password twice.") from None
        if again != password:
            raise InputFileError("The two passwords differ.", "Run eslkit passwd again and type the same one twice.")
    if len(password) < 8:
        raise InputFileError("That password is shorter than 8 characters.", "Choose a longer one.")
    return password
