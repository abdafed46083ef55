"""A small HTTP/1.1 load client on raw asyncio streams: keep-alive, fixed connections,
bounded in requests and in time. Lighter than httpx, so the client is not what is measured."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import stats


def post_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def graphql_request(
    host: str,
    port: int,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    path: str = "/graphql",
) -> bytes:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return post_request(host, port, path, body, headers)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = b""
    return Response(status, headers, body)


async def request_once(host: str, port: int, raw: bytes) -> Response:
    async with asyncio.timeout(30):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(raw)
            return await read_response(reader)
        finally:
            writer.close()


@dataclass
class LoadResult:
    connections: int
    requests: int = 0
    failures: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_failure: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def median_ms(self) -> float:
        return stats.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return stats.percentile(self.latencies, 99) * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "requests": self.requests,
            "failures": self.failures,
            "seconds": round(self.elapsed, 3),
            "rps": round(self.rps, 1),
            "median_ms": round(self.median_ms, 3) if self.latencies else None,
            "p99_ms": round(self.p99_ms, 3) if self.latencies else None,
        }


Check = Callable[[Response], bool]


async def _worker(
    host: str,
    port: int,
    raw: bytes,
    deadline: float,
    budget: list[int],
    check: Check | None,
    result: LoadResult,
    min_requests: int,
    hard_deadline: float,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0:
            clock = time.perf_counter()
            # Past the deadline only to reach a minimum sample, and never past the hard one.
            if clock >= hard_deadline or (clock >= deadline and result.requests >= min_requests):
                break
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(raw)
            response = await read_response(reader)
            took = time.perf_counter() - start
            if response.status != 200 or (check is not None and not check(response)):
                result.failures += 1
                if not result.first_failure:
                    result.first_failure = f"{response.status} {response.body[:300]!r}"
                continue
            result.requests += 1
            result.latencies.append(took)
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    raw: bytes,
    *,
    connections: int,
    seconds: float,
    max_requests: int = 1_000_000,
    min_requests: int = 20,
    warmup: float = 0.0,
    check: Check | None = None,
) -> LoadResult:
    """Send `raw` over `connections` keep-alive connections until the time or the budget
    runs out (longer, up to 3x, to get `min_requests`); a warm-up pass first, thrown away."""
    if warmup > 0:
        await run(
            host, port, raw, connections=connections, seconds=warmup, min_requests=1, check=check
        )
    result = LoadResult(connections)
    budget = [max_requests]
    start = time.perf_counter()
    deadline = start + seconds
    hard_deadline = start + 3 * seconds
    async with asyncio.timeout(3 * seconds + 60):
        await asyncio.gather(
            *(
                _worker(
                    host, port, raw, deadline, budget, check, result, min_requests, hard_deadline
                )
                for _ in range(connections)
            )
        )
    result.elapsed = time.perf_counter() - start
    return result
