"""Get one output per row: from a gateway endpoint, a Python callable, or a static column.

Rows run concurrently under a semaphore; each row has its own timeout (covering its retries)
and ends `ok` with an output or `error` with the reason. One row's failure never stops the run.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.client import GatewayCallError, GatewayClient
from evaluation.prompts import ModelInput


@dataclass(frozen=True, slots=True)
class RowOutcome:
    output: Any = None
    latency: float | None = None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


Progress = Callable[[], None]


async def _bounded(
    items: Sequence[Any], call: Callable[[Any], Any], *, concurrency: int, row_timeout: float | None, advance: Progress
) -> list[RowOutcome]:
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(item: Any) -> RowOutcome:
        async with semaphore:
            try:
                async with asyncio.timeout(row_timeout):
                    return await call(item)
            except TimeoutError:
                return RowOutcome(error=f"timeout: no answer within {row_timeout:g}s")
            except GatewayCallError as exc:
                return RowOutcome(error=str(exc))
            except Exception as exc:  # a callable model's own failure belongs to its row
                return RowOutcome(error=f"{type(exc).__name__}: {exc}")
            finally:
                advance()

    return list(await asyncio.gather(*(one(item) for item in items)))


async def predict_endpoint(
    client: GatewayClient,
    endpoint: str,
    inputs: Sequence[ModelInput],
    *,
    params: dict[str, Any],
    concurrency: int,
    row_timeout: float | None,
    advance: Progress,
) -> list[RowOutcome]:
    async def call(item: ModelInput) -> RowOutcome:
        answer = await client.ask(endpoint, messages=item.messages, **params)
        return RowOutcome(answer.text, answer.latency, cached=answer.cached)

    return await _bounded(inputs, call, concurrency=concurrency, row_timeout=row_timeout, advance=advance)


async def predict_callable(
    fn: Callable[[Any], Any],
    values: Sequence[Any],
    *,
    concurrency: int,
    row_timeout: float | None,
    advance: Progress,
) -> list[RowOutcome]:
    """Call `fn` once per row; a sync function runs in a worker thread so rows still overlap."""

    async def call(value: Any) -> RowOutcome:
        started = time.perf_counter()
        if inspect.iscoroutinefunction(fn):
            output = await fn(value)
        else:
            output = await asyncio.to_thread(fn, value)
            if inspect.isawaitable(output):
                output = await output
        return RowOutcome(output, time.perf_counter() - started)

    return await _bounded(values, call, concurrency=concurrency, row_timeout=row_timeout, advance=advance)


def predict_dataframe(fn: Callable[[Any], Any], rows: list[dict[str, Any]], columns: list[str]) -> list[RowOutcome]:
    """MLflow's function-model contract: one call with a DataFrame of the features, one output per row."""
    import pandas as pd

    outputs = fn(pd.DataFrame(rows, columns=columns))
    outputs = list(outputs.tolist() if hasattr(outputs, "tolist") else outputs)
    if len(outputs) != len(rows):
        raise ValueError(f"the model returned {len(outputs)} outputs for {len(rows)} rows")
    return [RowOutcome(o) for o in outputs]
