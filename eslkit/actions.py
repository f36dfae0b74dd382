"""What the popup does besides showing a panel: open a URL, run a program.

Templates use ``{field}`` placeholders (``{{`` for a literal brace).  Fields:
``ext``, ``state``, ``caller_number``, ``caller_name``, ``dialed``, ``queue``,
``call_uuid``, ``leg_uuid``, ``direction``, ``other_number``, ``other_name``
(the party the agent talks to, either way), ``transferred_from``, and
``contact_<column>`` for a column of the contact record (``contact_name``,
``contact_company``...).  A field with no value is the empty string.

- `--open-url`: every value is URL-encoded (``Caller 6208`` → ``Caller%206208``,
  ``&``, ``/``, ``#`` and ``?`` included), so a caller name can never change
  the address; the URL must be http or https; the default browser opens it.
- `--exec CMD ARG...`: the program runs *without a shell*; each template
  argument becomes exactly one argument whatever the value holds (quotes,
  ``;``, ``$(...)``, newlines).  Control characters in values are made
  visible first (many programs echo their arguments to a terminal) and values
  are cut at 256 characters.  A value can still begin with ``-``: put ``--``
  before such arguments if the program reads options.  What it prints goes to
  ``on_output`` (the popup shows it), with a failing exit status.

While 8 browser launches or programs are still running, further ones are
skipped: a flood of calls must not become a flood of processes.
"""

from __future__ import annotations

import difflib
import os
import string
import subprocess
import threading
import time
import webbrowser
from typing import Callable, Iterable, Optional, Sequence
from urllib.parse import quote, urlsplit

from eslkit.calls import LegView
from eslkit.errors import TemplateError
from eslkit.safe_text import visible

__all__ = ["TemplateError", "template_values", "render_template", "UrlAction", "ExecAction", "FIELDS"]

FIELDS = ("ext", "state", "caller_number", "caller_name", "dialed", "queue", "call_uuid", "leg_uuid",
          "direction", "other_number", "other_name", "transferred_from")
MAX_VALUE = 256
# A flood of rings (a test rig, a looping simulator) must not become a flood of
# browser tabs or processes: beyond this many still running, an action is skipped.
MAX_RUNNING = 8


def check_template(template: str, contact_columns: Optional[Iterable[str]] = None) -> list[str]:
    """The field names a template uses; a TemplateError (whose fix lists every valid field)
    for anything else.  ``contact_columns``: the columns of the --contacts file, which the
    ``{contact_<column>}`` fields must name (empty: no file, so none); None: not checked."""
    columns = None if contact_columns is None else [c for c in contact_columns if c.isidentifier()]
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"The template {template!r} is malformed: {exc}.", "Write {{ and }} for literal braces.") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        contact = name.startswith("contact_") and name[8:].isidentifier()
        if spec or conv or not (name in FIELDS or contact):
            raise TemplateError(f"The template {template!r} uses an unknown field {{{name}}}{_guess(name, columns)}.",
                                _fields(columns))
        if contact and columns is not None and name[8:] not in columns:
            if not columns:
                raise TemplateError(f"The template {template!r} uses {{{name}}}, but there is no --contacts file.",
                                    f"Give --contacts FILE (with a column {name[8:]!r}), or use the fields "
                                    "there are: " + ", ".join("{%s}" % f for f in FIELDS) + ".")
            raise TemplateError(f"The template {template!r} uses {{{name}}}, but the contacts file has no column "
                                f"{name[8:]!r}{_guess(name, columns)}.", _fields(columns))
        names.append(name)
    return names


def _guess(name: str, columns: Optional[Sequence[str]]) -> str:
    known = [*FIELDS, *(f"contact_{c}" for c in columns or ())]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    return f" (did you mean {{{close[0]}}}?)" if close else ""


def _fields(columns: Optional[Sequence[str]]) -> str:
    """The fix of a template error: every field there is."""
    fields = ", ".join("{%s}" % f for f in FIELDS)
    if columns is None:
        return f"Use {fields} or {{contact_<column>}} (a column of the --contacts file)."
    if not columns:
        return f"Use {fields} ({{contact_<column>}} needs --contacts FILE)."
    return f"Use {fields}, or the contacts file's " + ", ".join("{contact_%s}" % c for c in columns) + "."


def template_values(leg: LegView) -> dict[str, str]:
    values = {name: getattr(leg, name) or "" for name in FIELDS}
    for key, value in (leg.contact or {}).items():
        values[f"contact_{key}"] = "" if value is None else str(value)
    return values


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return ""  # a contact column this record lacks


def render_template(template: str, values: dict[str, str], encode: Callable[[str], str]) -> str:
    """Fill `template`; every value passes through `encode` first."""
    check_template(template)
    return template.format_map(_Values({k: encode(v) for k, v in values.items()}))


def _url_value(value: str) -> str:
    return quote(value[:MAX_VALUE], safe="")


def _arg_value(value: str) -> str:
    return visible(value, MAX_VALUE)


class UrlAction:
    """Open the filled-in URL in the default browser (in a thread: it can block)."""

    def __init__(self, template: str, opener: Callable[[str], object] = webbrowser.open, *,
                 contact_columns: Optional[Iterable[str]] = None):
        check_template(template, contact_columns)
        if urlsplit(template.split("{", 1)[0] or template).scheme not in ("http", "https"):
            raise TemplateError(
                f"The --open-url template {template!r} does not start with http:// or https://.",
                "Write the full address, e.g. 'https://crm.example/search?phone={caller_number}'.",
            )
        self.template = template
        self.opener = opener
        self._threads: list[threading.Thread] = []

    def url(self, leg: LegView) -> str:
        return render_template(self.template, template_values(leg), _url_value)

    def __call__(self, leg: LegView) -> bool:
        """Open the browser; False when skipped (too many still starting)."""
        url = self.url(leg)
        self._threads = [t for t in self._threads if t.is_alive()]
        if len(self._threads) >= MAX_RUNNING:
            return False
        thread = threading.Thread(target=self.opener, args=(url,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return True

    def wait(self, timeout: float = 5.0) -> None:
        """Give browsers still being started a moment (a replay can end right after a ring)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))


class ExecAction:
    """Run a program with filled-in arguments, no shell, never waiting for it.

    What the program prints (stdout and stderr) and a failing exit status go, line by
    line, to ``on_output`` — called from a reader thread — or nowhere when it is None."""

    MAX_LINES = 20  # of one run's output; the rest is read and counted, not shown

    def __init__(self, argv: Sequence[str], *, contact_columns: Optional[Iterable[str]] = None,
                 on_output: Optional[Callable[[str], None]] = None):
        if not argv or not argv[0]:
            raise TemplateError("--exec needs a program to run.", "e.g. --exec notify-send 'Call from {caller_name}'")
        for arg in argv:
            check_template(arg, contact_columns)
        self.argv = list(argv)
        self.on_output = on_output
        self.children: list[subprocess.Popen] = []
        self._readers: list[threading.Thread] = []

    def args(self, leg: LegView) -> list[str]:
        values = template_values(leg)
        return [render_template(arg, values, _arg_value) for arg in self.argv]

    def __call__(self, leg: LegView) -> Optional[subprocess.Popen]:
        """Start the program; None when skipped (too many still running)."""
        self.reap()
        if len(self.children) >= MAX_RUNNING:
            return None
        argv = self.args(leg)
        said = self.on_output is not None
        try:
            child = subprocess.Popen(
                argv, shell=False, env=_child_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if said else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if said else subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            raise TemplateError(
                f"Cannot run {argv[0]!r}: {exc.strerror or exc}.", "Check the program name given to --exec."
            ) from None
        self.children.append(child)
        if said:
            reader = threading.Thread(target=self._relay, args=(child,), daemon=True)
            reader.start()
            self._readers = [t for t in self._readers if t.is_alive()] + [reader]
        return child

    def _relay(self, child: subprocess.Popen) -> None:
        """Hand the program's output on, a line at a time, then its exit status if it failed."""
        name = os.path.basename(self.argv[0])
        shown = hidden = 0
        with child.stdout:
            for raw in child.stdout:  # read to the end: a full pipe would stall the program
                if shown < self.MAX_LINES:
                    shown += 1
                    self.on_output(f"{name}: {raw.decode('utf-8', 'replace').rstrip()}")
                else:
                    hidden += 1
        if hidden:
            self.on_output(f"{name}: … {hidden} more lines not shown")
        code = child.wait()
        if code != 0:
            self.on_output(f"{name} exited with status {code}" if code > 0 else f"{name} was killed by signal {-code}")

    def reap(self) -> None:
        """Collect children that finished, so none is left a zombie."""
        self.children = [c for c in self.children if c.poll() is None]

    def wait(self, timeout: float = 2.0) -> None:
        """Give programs that are finishing a moment to say what they said (a replay can end
        right after a ring), then reap; a program still running is left to run."""
        deadline = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(max(deadline - time.monotonic(), 0))
        self.reap()


# Secrets eslkit reads from its environment: a program run for a popup has no business with them.
_SECRET_VARS = ("ESL_PASSWORD", "ESLKIT_BROKER_PASSWORD")


def _child_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in _SECRET_VARS}


def forget_secrets() -> None:
    """Drop the secrets from this process's environment once they are read: Python's
    webbrowser gives the browser --open-url starts eslkit's own environment."""
    for name in _SECRET_VARS:
        os.environ.pop(name, None)
