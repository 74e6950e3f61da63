"""A load client: keep-alive HTTP/1.1 connections sending requests back to back.

Plain asyncio streams rather than an HTTP library, so that the client spends
as little of the machine as it can on itself; it runs in a process of its
own, beside the server's.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> tuple[int, bytes]:
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    payload = await reader.readexactly(length)
    return int(status_line.split()[1]), payload


def _head(host: str, path: str, key: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()


async def _client(
    host: str, port: int, head: bytes, bodies: list[bytes], until: float, load: Load, seed: int
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            body = bodies[rng.randrange(len(bodies))]
            started = time.perf_counter()
            status, _ = await _request(reader, writer, head, body)
            load.latencies.append(time.perf_counter() - started)
            load.requests += 1
            if status != 200:
                load.errors += 1
    finally:
        writer.close()


async def _stream(
    host: str, port: int, head: bytes, batches: list[bytes], until: float, accepted: list[int]
) -> None:
    """Ingest batches one after another until ``until``; counts accepted events."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for body in batches:
            if time.perf_counter() >= until:
                break
            status, payload = await _request(reader, writer, head, body)
            if status == 200:
                accepted.append(json.loads(payload)["data"]["ingestEvents"]["accepted"])
    finally:
        writer.close()


async def _run(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    clients: int,
    seconds: float,
    key: str,
    ingest: list[bytes] | None,
) -> tuple[Load, int]:
    load = Load(0, seconds, [], 0)
    until = time.perf_counter() + seconds
    head = _head(host, path, key)
    accepted: list[int] = []
    tasks = [
        asyncio.create_task(_client(host, port, head, bodies, until, load, seed))
        for seed in range(clients)
    ]
    if ingest:
        ingest_head = _head(host, "/graphql", key)
        tasks.append(asyncio.create_task(_stream(host, port, ingest_head, ingest, until, accepted)))
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - started
    return load, sum(accepted)


def run(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    clients: int,
    seconds: float,
    *,
    key: str = "bench",
    ingest: list[bytes] | None = None,
) -> tuple[Load, int]:
    """``clients`` connections for ``seconds``; with ``ingest``, batches posted meanwhile."""
    return asyncio.run(_run(host, port, path, bodies, clients, seconds, key, ingest))
