"""Child processes of the launcher: own session, logs to a file, die with their parent.

Children get their own session so a terminal's Ctrl-C reaches only the launcher, which stops
them in reverse start order. PR_SET_PDEATHSIG makes the kernel send SIGTERM to a child when
the launcher dies, even by SIGKILL, so no broker outlives it as an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _die_with_parent(parent_pid: int) -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` for subprocess: the child gets SIGTERM when this process dies."""
    parent = os.getpid()
    return lambda: _die_with_parent(parent)


class ChildProcess:
    """One named child: start, stop (TERM, then KILL), and a wait that reports its death."""

    def __init__(self, name: str, argv: Sequence[str], log_file: Path, env: Mapping[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The OS pid once started."""
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Spawn the process with stdout and stderr appended to its log file."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:  # noqa: ASYNC230 - an append handle, no I/O wait
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        log.info("started", extra={"child": self.name, "pid": self.proc.pid})

    async def wait(self) -> int:
        """The exit code, when the process ends."""
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; a no-op when not running."""
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            log.warning("did not stop on SIGTERM; killing", extra={"child": self.name, "pid": self.pid})
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        log.info("stopped", extra={"child": self.name, "pid": self.pid, "code": self.proc.returncode})

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the log, joined with ' | ' for a one-line error."""
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])
