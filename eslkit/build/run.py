"""Execute a BuildPlan: write files (journaled), run the steps with `sh`, deliver, verify.

Progress goes to a reporter (see report.py) and every command's full output
to the log file.  A second run with nothing changed stops at the up-to-date
check, which costs a few stat() calls.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import threading
import time
from collections import deque
from pathlib import Path
from typing import Optional

from eslkit.build import install
from eslkit.build.diagnose import diagnose
from eslkit.build.journal import Journal
from eslkit.build.plan import BuildPlan, Step
from eslkit.build.tools import find_tool
from eslkit.errors import BuildStepFailed, TreeNotWritable

TAIL_LINES = 25


class Log:
    """The full log (--log FILE); a no-op without a file."""

    def __init__(self, path: Optional[Path]):
        self.fh = open(path, "a", encoding="utf-8") if path else None
        self.lock = threading.Lock()  # compile steps run in parallel

    def write(self, text: str) -> None:
        if self.fh:
            with self.lock:
                self.fh.write(text if text.endswith("\n") else text + "\n")
                self.fh.flush()

    def close(self) -> None:
        if self.fh:
            self.fh.close()


def why_not_writable(path: Path) -> Optional[str]:
    """Why ``path`` cannot be written (root ignores mode bits, so look at them too)."""
    try:
        st = path.stat()
        vfs = os.statvfs(path)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    if vfs.f_flag & os.ST_RDONLY:
        return f"{path} is on a read-only file system"
    if st.st_uid != os.geteuid():
        return f"{path} belongs to another user (uid {st.st_uid}); eslkit runs as uid {os.geteuid()}"
    if not st.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        return f"{path} is read-only (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def preflight(plan: BuildPlan) -> None:
    """Every reason the build cannot work that is cheap to see, found before it writes anything."""
    check_writable(plan)
    check_tools(plan)


def check_writable(plan: BuildPlan) -> None:
    """The tree (libs/esl, every file the plan replaces) and the output."""
    paths = [plan.tree.esl]
    paths += sorted({f.path.parent for f in plan.files if f.path.parent.exists()})
    paths += [f.path for f in plan.files if f.path.exists()]
    paths += [p for p in plan.overwrites if p.exists()]
    if plan.state_dir.exists():
        paths.append(plan.state_dir)
    for path in paths:
        why = why_not_writable(path)
        if why:
            raise TreeNotWritable(f"Cannot build in {plan.tree.root}: {why}.")
    what = {"install": "into site-packages", "wheel": "the wheel into", "out": "the module into"}[plan.output.kind]
    install.check_writable_dir(plan.output.dest, what)


def tools_needed(mode: str) -> tuple:
    return ("gcc", "g++", "make") if mode == "py3mod" else ("gcc", "g++")  # make runs gcc for libesl


def check_tools(plan: BuildPlan) -> None:
    for tool in tools_needed(plan.mode):
        find_tool(tool)


def run_step(step: Step, log: Log, timeout: float = 900, interrupts: Optional["Interrupts"] = None,
             stream: bool = True) -> None:
    """Run one command with `sh`; on failure raise with its tail and a diagnosis.

    ``stream=False`` (parallel steps) writes the output to the log in one
    block when the command ends, so outputs never interleave.
    """
    tail: deque = deque(maxlen=TAIL_LINES)
    lines: list = []

    def on_line(line: str) -> None:
        if stream:
            log.write(line.rstrip("\n"))
        tail.append(line.rstrip("\n"))
        lines.append(line)

    import sh  # here, not at the top: it costs ~0.1 s and the up-to-date path never runs a command

    log.write(f"$ cd {shlex.quote(str(step.cwd))} && {shlex.join(step.argv)}")
    step.cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LC_ALL="C", **dict(step.env))
    env.pop("ESL_PASSWORD", None)  # compilers have no business with it
    try:
        command = sh.Command(step.argv[0])
    except sh.CommandNotFound:
        raise BuildStepFailed(f"Step '{step.name}' cannot start: {step.argv[0]} was not found.",
                              fix="Install it (apt-get install build-essential swig make) or run `eslkit doctor`.") from None
    # _in="": no input.  With a callback for _out, sh would otherwise give the command a stdin
    # queue whose thread polls every 0.1 s, and every command's end waits for that poll.
    proc = command(*step.argv[1:], _cwd=str(step.cwd), _env=env, _err_to_out=True, _out=on_line, _in="",
                   _bg=True, _bg_exc=False, _tty_out=False,
                   _new_group=True)  # its own process group: Ctrl-C is ours to pass on, all at once
    # Our own timer, not sh's _timeout: its thread also polls every 0.1 s, ~0.05 s lost a command.
    expired = threading.Event()
    timer = threading.Timer(timeout, _time_out, (proc, expired))
    timer.daemon = True
    timer.start()
    if interrupts is not None:
        interrupts.running[id(proc)] = proc
        if interrupts.seen:  # Ctrl-C came while the command was starting
            stop(proc)
    try:
        proc.wait()
    except KeyboardInterrupt:  # SIGINT with the default handler (no Interrupts in use)
        stop(proc)
        raise
    except sh.ErrorReturnCode as exc:
        if expired.is_set():
            raise BuildStepFailed(f"Step '{step.name}' took longer than {timeout:g} s and was stopped.") from None
        if (interrupts is not None and interrupts.seen) or exc.exit_code in (-signal.SIGINT, 128 + signal.SIGINT):
            raise KeyboardInterrupt from None  # we stopped it, or Ctrl-C reached the command too
        text = "".join(lines)
        problem, fix = diagnose(text)
        message = f"Step '{step.name}' failed (exit {exc.exit_code})"
        message += f": {problem}" if problem else "."
        err = BuildStepFailed(message, fix=fix)
        err.tail = list(tail)
        err.step = step
        raise err from None
    finally:
        timer.cancel()
        if interrupts is not None:
            interrupts.running.pop(id(proc), None)
        if not stream and lines:
            log.write("".join(lines))


def _time_out(proc, expired: threading.Event) -> None:
    expired.set()
    try:
        proc.signal_group(signal.SIGKILL)  # as sh's _timeout did: a hung command may ignore SIGTERM
    except Exception:  # already finished
        pass


def stop(proc) -> None:
    """SIGTERM the step's whole process group (make and the compilers it runs)."""
    if proc is None:
        return
    try:
        proc.signal_group(signal.SIGTERM)
    except Exception:  # already finished
        pass


class Interrupts:
    """Ctrl-C that cannot get lost.

    Raising KeyboardInterrupt from the handler is unreliable: a SIGINT that
    lands while `sh` forks is raised inside an at-fork hook, where Python
    prints and drops it.  So the handler only records it and stops the running
    command; the build raises at the next step boundary, in a known place.
    """

    def __init__(self):
        self.seen = False
        self.running: dict = {}  # id -> sh process of the current step(s)
        self._previous = None

    def _handler(self, signum, frame):
        self.seen = True
        self.stop_all()

    def stop_all(self) -> None:
        for proc in list(self.running.values()):
            stop(proc)

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _batches(steps) -> list:
    """Consecutive steps of one group form a batch; every other step is a batch of one."""
    batches: list = []
    for step in steps:
        if step.group and batches and batches[-1][0].group == step.group:
            batches[-1].append(step)
        else:
            batches.append([step])
    return batches


class _Label:
    def __init__(self, name: str):
        self.name = name


def _run_parallel(steps: list, reporter, log: Log, interrupts: "Interrupts") -> None:
    """Run independent compile steps at once, one per core; the first failure stops the rest."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    def one(step):
        started = time.monotonic()
        run_step(step, log, interrupts=interrupts, stream=False)
        reporter.step_done(step.name, time.monotonic() - started)

    workers = max(1, min(len(steps), os.cpu_count() or 1))
    with reporter.running(_Label(f"compile {len(steps)} files ({workers} at a time)")):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # the wrapper takes longest: start it first so it never runs alone at the end
            ordered = sorted(steps, key=lambda step: "esl_wrap" not in step.name)
            futures = [pool.submit(one, step) for step in ordered]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception()), None)
            if failed is not None:
                for future in pending:
                    future.cancel()
                interrupts.stop_all()
                wait(futures)
                raise failed.exception()


class Result:
    def __init__(self, plan: BuildPlan, *, up_to_date: bool, delivered: list, verified: dict):
        self.plan, self.up_to_date, self.delivered, self.verified = plan, up_to_date, delivered, verified


def _deliver(plan: BuildPlan) -> list:
    if plan.output.kind == "wheel":
        return [install.write_wheel(plan.products, plan.output.dest, plan.target, plan.tree.version)]
    return install.copy_pair(plan.products, plan.output.dest)


def _verify(plan: BuildPlan, delivered: list) -> dict:
    esl_py = next((p for p in delivered if p.name == "ESL.py"), None)  # none for a wheel
    return install.verify(plan.target, _verify_path(plan), plan.check, expect=esl_py)


def _verify_path(plan: BuildPlan) -> Optional[Path]:
    if plan.output.kind == "wheel":
        return plan.products[0].parent  # the wheel holds exactly these two files
    if plan.output.kind == "out":
        return plan.output.dest
    return None  # installed: the interpreter must find it by itself


def _stamp(paths: list) -> dict:
    return {str(p): [p.stat().st_size, p.stat().st_mtime_ns] for p in paths}


def up_to_date(plan: BuildPlan, journal: Journal, fingerprint: str) -> bool:
    last = journal.last
    if last.get("fingerprint") != fingerprint:
        return False
    try:
        return all(_stamp([Path(p)])[p] == v for p, v in last.get("delivered", {}).items()) and \
            all(p.exists() for p in plan.products) and bool(last.get("delivered"))
    except OSError:
        return False


def _remember_programs(journal: Journal, plan: BuildPlan) -> bool:
    """Keep what prepare() learnt from the interpreter and swig, with what it depends on,
    so that the next run need not ask them again.  True if that changed."""
    programs = {
        "probe": {"identity": plan.target.identity, "facts": plan.target.as_dict()},
        "swig": {"identity": plan.swig.identity, "path": plan.swig.path, "version": plan.swig.version},
    }
    changed = any(journal.data.get(name) != record for name, record in programs.items())
    journal.data.update(programs)
    return changed


def execute(plan: BuildPlan, reporter, log: Log, *, force: bool = False) -> Result:
    journal = Journal(plan.tree.esl)
    fingerprint = plan.fingerprint()
    if not force and up_to_date(plan, journal, fingerprint):
        if _remember_programs(journal, plan):  # asked again, same answers: no need to ask next time
            try:
                journal.save()
            except OSError:  # a read-only tree: nothing to build, so nothing to complain about
                pass
        delivered = [Path(p) for p in journal.last["delivered"]]
        reporter.up_to_date(plan, delivered)
        verified = {}
        if plan.check:  # nothing to build, but the connection test was asked for
            started = time.monotonic()
            verified = _verify(plan, delivered)
            reporter.step_done(f"import ESL in Python {plan.target.version}, api status via {plan.check}",
                               time.monotonic() - started)
        return Result(plan, up_to_date=True, delivered=delivered, verified=verified)
    preflight(plan)
    with Interrupts() as interrupts:
        return _execute(plan, reporter, log, journal, fingerprint, interrupts)


def _execute(plan: BuildPlan, reporter, log: Log, journal: Journal, fingerprint: str,
             interrupts: Interrupts) -> Result:
    log.write(f"# eslkit build: {plan.mode} ({plan.reason}) for {plan.target.executable}")
    journal.data.pop("last", None)
    journal.snapshot()
    for change in plan.files:
        started = time.monotonic()
        journal.write(change.path, change.content, change.mode)
        reporter.step_done(f"write {change.path.relative_to(plan.tree.esl)}", time.monotonic() - started)
    journal.end()  # e.g. python3/ created in a 1.6 tree
    for path in plan.overwrites:
        journal.backup(path)
    for batch in _batches(plan.steps):
        interrupts.check()
        started = time.monotonic()
        journal.begin(batch[0].name, unknown_writes=any(step.unknown_writes for step in batch))
        try:
            if len(batch) == 1:
                with reporter.running(batch[0]):
                    run_step(batch[0], log, interrupts=interrupts)
                interrupts.check()
                reporter.step_done(batch[0].name, time.monotonic() - started)
            else:
                _run_parallel(batch, reporter, log, interrupts)
                interrupts.check()
        except BuildStepFailed:
            # The command ended by itself: what it wrote can be recorded.  (After
            # Ctrl-C its children may still be finishing: the step stays pending.)
            journal.end()
            raise
        journal.end()
    for path in plan.overwrites:  # now holding swig 4's output
        journal.remember(path)
    started = time.monotonic()
    delivered = _deliver(plan)
    reporter.step_done(plan.output.describe(), time.monotonic() - started)
    started = time.monotonic()
    verified = _verify(plan, delivered)
    interrupts.check()
    log.write(f"# verified: {verified}")
    reporter.step_done(f"import ESL in Python {plan.target.version}"
                       + (f", api status via {plan.check}" if plan.check else ""), time.monotonic() - started)
    journal.data["last"] = {"fingerprint": fingerprint, "delivered": _stamp(delivered)}
    _remember_programs(journal, plan)
    journal.save()
    return Result(plan, up_to_date=False, delivered=delivered, verified=verified)


def restore(esl: Path) -> list:
    journal = Journal(esl)
    if not journal.exists:
        return []
    why = why_not_writable(esl)
    if why:
        raise TreeNotWritable(f"Cannot restore {esl}: {why}.")
    return journal.restore()
