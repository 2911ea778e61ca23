"""Running the server with the shutdown behaviour operators expect from a proxy.

- First SIGTERM or SIGINT: stop accepting connections, let in-flight calls and streams finish
  within `--graceful-timeout` (then cancel them), run the lifespan shutdown (which flushes
  tracking), and exit 0.
- A second signal, of either kind: stop waiting. Calls still in flight are cancelled at once (each
  is recorded with status 499), tracking gets at most FORCED_FLUSH_SECONDS to flush, and the
  process exits: 0 if the flush finished, 1 if it had to be abandoned.

Plain uvicorn differs in three ways: only a second SIGINT forces the exit (a second SIGTERM, what
scripts and impatient operators send, does nothing); a forced exit skips the lifespan shutdown,
so queued tracking records are lost; and after a clean drain it re-raises the signal, so the
process dies of it (status 143) instead of exiting 0.

With `--workers N` uvicorn's supervisor runs the workers and its own signal handling applies.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType

import uvicorn

STARTUP_FAILURE = 3
FLUSH_ABANDONED = 1
FORCED_FLUSH_SECONDS = 5.0

logger = logging.getLogger("gateway")


class GatewayServer(uvicorn.Server):
    flushed = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals: uvicorn would re-raise it after a clean shutdown.
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        done = getattr(self.lifespan, "shutdown_event", None)
        if done is None or done.is_set():
            self.flushed = not self.lifespan.shutdown_failed
            return
        # Forced: uvicorn skipped the lifespan shutdown. Cancel what is in flight (so each call is
        # recorded) and give tracking a bounded moment to flush.
        logger.warning("second signal: cancelling %d call(s) in flight", len(self.server_state.tasks))
        for task in list(self.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(self.lifespan.shutdown(), FORCED_FLUSH_SECONDS)
            self.flushed = not self.lifespan.shutdown_failed
        except TimeoutError:
            logger.error("tracking did not flush within %.0f s; unwritten records are lost", FORCED_FLUSH_SECONDS)


def serve(config: uvicorn.Config) -> int:
    """Run one server process until a signal; the exit status (0 once tracking is flushed)."""
    server = GatewayServer(config)
    server.run()
    if not server.started:
        return STARTUP_FAILURE
    return 0 if server.flushed else FLUSH_ABANDONED
