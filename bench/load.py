"""A load client: keep-alive HTTP/1.1 connections sending requests back to back.

Plain asyncio streams rather than an HTTP library, so that the client spends
as little of the machine as it can on itself; it runs in a process of its
own, beside the server's, and an ingest stream beside clients in another.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import random
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection


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


def _stream_apart(
    host: str, port: int, key: str, batches: list[bytes], until: float, sender: Connection
) -> None:
    accepted: list[int] = []
    asyncio.run(_stream(host, port, _head(host, "/graphql", key), batches, until, accepted))
    sender.send(sum(accepted))


async def _run(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    clients: int,
    until: float,
    key: str,
    ingest: list[bytes] | None,
) -> tuple[Load, int]:
    load = Load(0, until - time.perf_counter(), [], 0)
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
    ingest_port: int | None = None,
) -> tuple[Load, int]:
    """``clients`` connections for ``seconds``; with ``ingest``, batches posted meanwhile.

    The batches go to the server at ``ingest_port`` if given, else to the one read from.

    Beside clients, the batches are posted from a process of their own, as an
    integration would post them: making, sending and decoding a batch of 500
    in this process would hold up its clients' event loop and count as their
    latency.

    What this process holds before the load starts (a benchmark's data set:
    1.5M generated events are 3M objects) is frozen first: a full collection
    walked all of it, 0.3 to 3 s at that size, with every client stalled and
    the pause counted as the server's latency.
    """
    gc.freeze()
    until = time.perf_counter() + seconds
    if not ingest or not clients:
        return asyncio.run(_run(host, port, path, bodies, clients, until, key, ingest))
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    stream = context.Process(
        target=_stream_apart,
        args=(host, ingest_port or port, key, ingest, until, sender),
        daemon=True,
    )
    stream.start()
    try:
        load, _ = asyncio.run(_run(host, port, path, bodies, clients, until, key, None))
        accepted: int = receiver.recv()
    finally:
        stream.join(timeout=60)
    return load, accepted
