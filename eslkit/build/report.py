"""Rich renderables for the build: the plan (--dry-run), progress lines, a failure.

Only the command owns the Console; these functions build renderables, and the
Progress reporter prints through the console it is given.  Paths and tool
output are shown as plain Text, never as markup.
"""

from __future__ import annotations

import shlex
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from eslkit.build.plan import BuildPlan
from eslkit.safe_text import visible

if TYPE_CHECKING:
    from rich.console import Group
    from rich.panel import Panel


def plan_renderable(plan: BuildPlan) -> Group:
    # Imported here, not at the top: only --dry-run shows them, and an up-to-date build should start fast.
    from rich.console import Group
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table

    tree, target = plan.tree, plan.target
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("tree", Text(str(tree.root)))
    facts.add_row("FreeSWITCH", Text(tree.version or "unknown version"))
    facts.add_row("bindings", Text(", ".join(f"{b}/" for b in tree.bindings) or "none (python3/ is created)"))
    configured = "yes" if tree.configured else "no"
    if tree.moved:
        configured += f" (in {tree.switch_srcdir}, since moved)"
    facts.add_row("configured", Text(configured))
    facts.add_row("mode", Text(f"{plan.mode}: {plan.reason}"))
    facts.add_row("python", Text(f"{target.executable} ({target.version_full}, {target.module_name})"))
    facts.add_row("swig", Text(f"{plan.swig.path} ({plan.swig.version})"))
    facts.add_row("output", Text(plan.output.describe()))
    if plan.check:
        facts.add_row("check", Text(f"connect to {plan.check} and run `api status`"))
    parts = [facts]
    for note in plan.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    for change in plan.files:
        diff = change.diff(tree.esl)
        title = Text(f"{change.path.relative_to(tree.esl)} — {change.reason}")
        body = Syntax(diff, "diff", word_wrap=True) if diff else Text("(unchanged)")
        parts.append(Panel(body, title=title, title_align="left"))
    backups = [f.path for f in plan.files] + list(plan.overwrites)
    if backups:
        parts.append(Text("backed up first (eslkit build --restore puts them back): "
                          + ", ".join(str(p.relative_to(tree.esl)) for p in backups if p.exists()), style="dim"))
    unnamed = [step.name for step in plan.steps if step.unknown_writes]
    if unnamed:
        parts.append(Text(f"{' and '.join(unnamed)} may change other files of libs/esl (e.g. src/.deps/*.Plo): "
                          "eslkit keeps the original of each one it changes", style="dim"))
    parts.append(Text("commands:", style="bold"))
    for number, step in enumerate(plan.steps, 1):
        line = Text(f"{number:>2}. {step.name}", style="bold", no_wrap=True, overflow="ignore")
        line.append(f"  ({step.why}; in {step.cwd})" if step.why else f"  (in {step.cwd})", style="dim")
        parts.append(line)
        # Whole, never wrapped or cut by eslkit (piped, or on a terminal that wraps it
        # itself), so the command can be copied and run as printed.
        parts.append(Text("    $ " + shlex.join(step.argv), no_wrap=True, overflow="ignore"))
    return Group(*parts)


def failure_renderable(err) -> Panel:
    from rich.panel import Panel

    tail = getattr(err, "tail", None) or []
    return Panel(Text("\n".join(visible(line) for line in tail)), title=Text(f"last {len(tail)} lines of '{err.step.name}'"),
                 title_align="left", border_style="red")


class Progress:
    """Prints one line per finished step with its elapsed time."""

    def __init__(self, console: Console):
        self.console = console
        self.started = time.monotonic()

    @contextmanager
    def running(self, step):
        with self.console.status(Text(f"{step.name} …")):
            yield

    def step_done(self, name: str, elapsed: float) -> None:
        line = Text("✓ ", style="green")
        line.append(name)
        line.append(f"  {elapsed:.2f} s", style="dim")
        self.console.print(line)

    def up_to_date(self, plan: BuildPlan, delivered: list) -> None:
        self.console.print(Text(f"✓ up to date: nothing changed since the last build "
                                f"({', '.join(str(p) for p in delivered)})", style="green"))

    def finished(self, result) -> None:
        if not result.up_to_date:
            self.console.print(Text(f"done in {time.monotonic() - self.started:.1f} s: ", style="bold green")
                               + Text(", ".join(str(p) for p in result.delivered)))
        status = result.verified.get("status")
        if status:  # from the switch: untrusted, shown with control characters made visible
            for line in status.strip().splitlines():
                self.console.print(Text(visible(line, max_len=200)))
