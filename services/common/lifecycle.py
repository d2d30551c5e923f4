"""One lifecycle shape for every long-running object.

A `Service` has `start()`, `stop()` (safe to call twice) and `wait()` (returns when it ended
by itself, e.g. a child process died). `run_until_signalled` runs one to completion: the first
SIGINT/SIGTERM stops it cleanly, a second one exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Protocol

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130


class Service(Protocol):
    """What `run_until_signalled` drives."""

    async def start(self) -> None:
        """Bring the service up; raise a FleetError when it cannot."""

    async def stop(self) -> None:
        """Bring it down; a second call is a no-op."""

    async def wait(self) -> None:
        """Return when the service ended by itself (a failure raises)."""


async def run_until_signalled(service: Service) -> bool:
    """Start `service`, run until a signal or its own end, always stop it.

    Returns True when a signal ended the run, False when the service ended by itself.
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            log.info("stopping (again to exit at once)", extra={"signal": signal.Signals(signum).name})
            stop_requested.set()
        else:
            os._exit(EXIT_INTERRUPTED)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    requested = asyncio.ensure_future(stop_requested.wait())
    try:
        # A signal while starting aborts the start instead of waiting for it.
        starting = asyncio.ensure_future(service.start())
        await asyncio.wait({starting, requested}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return True
        starting.result()
        ended = asyncio.ensure_future(service.wait())
        await asyncio.wait({ended, requested}, return_when=asyncio.FIRST_COMPLETED)
        if ended.done():
            ended.result()  # re-raise the service's own failure
            return False
        ended.cancel()
        return True
    finally:
        requested.cancel()
        await service.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
