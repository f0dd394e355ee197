"""A node's health follows its storage.

Owns: `HealthState` (pure: the answers of the storage in, the changes of health out) and
`StorageHealth`, the component that asks the backend `check(timeout_s)` about every
`interval_s` and sets the gRPC health of "" and of every exesdb.v1 service: SERVING while the
storage answers, NOT_SERVING while it does not. It runs without client traffic, `Watch`
streams each change (grpc_health's servicer does), and the log tells each change once.
Must not import gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from ..errors import StorageUnavailableError
from ..store.base import StorageBackend

__all__ = ["HealthState", "StorageHealth"]

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthState:
    """Whether the node serves, from what its storage answers."""

    __slots__ = ("serving",)

    def __init__(self, serving: bool = True) -> None:
        self.serving = serving

    def observe(self, answered: bool) -> bool | None:
        """The new serving state when this answer changes it, else None."""
        if answered == self.serving:
            return None
        self.serving = answered
        return answered


class StorageHealth:
    """Polls the storage and sets the health of `services` ("" included) from its answers.
    `await start()` sets SERVING (the node has just used its storage) and starts polling;
    `await stop()` stops it and is safe to call twice."""

    def __init__(
        self,
        backend: StorageBackend,
        health: HealthServicer,
        services: Iterable[str],
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.backend = backend
        self.health = health
        self.services = ("", *(s for s in services if s))
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.state = HealthState()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._set(SERVING)
        self._task = asyncio.create_task(self._run(), name="storage-health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> StorageHealth:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            reason = await self._ask()
            change = self.state.observe(reason is None)
            if change is True:
                await self._set(SERVING)
                log.info("storage available again: health SERVING", extra={"backend": self.backend.name})
            elif change is False:
                await self._set(NOT_SERVING)
                log.warning(
                    "storage unavailable: health NOT_SERVING", extra={"backend": self.backend.name, "reason": reason}
                )

    async def _ask(self) -> str | None:
        """None when the storage answered in time, else why not."""
        try:
            # The backend bounds its check by timeout_s; this bounds a backend that does not.
            async with asyncio.timeout(self.timeout_s + 1):
                await self.backend.check(self.timeout_s)
        except StorageUnavailableError as e:
            return e.message
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s"
        except Exception as e:  # noqa: BLE001 - a check that fails in any way means "not serving"
            if self.state.serving:  # logged with its traceback once, when health changes
                log.error("storage check failed", exc_info=e, extra={"backend": self.backend.name})
            return f"check failed: {type(e).__name__}"
        return None

    async def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in self.services:
            await self.health.set(service, status)
