"""Serving under load: GraphQL reads beside bare endpoints, with and without an ingest stream.

    python -m bench.serve                       # about a million identifiers
    python -m bench.serve --persons 12000 --neo4j-uri bolt://127.0.0.1:7687
    python -m bench.serve --scale               # about 100k, 1M and 3M identifiers

A generated data set is imported with ``idgraph import``; the server
(``bench.serve_app``: the service as ``idgraph serve`` builds it, with bare
endpoints beside it) runs in a process of its own, the load client in this
one. Each read is measured at 1, 10 and 50 keep-alive clients against
``/graphql`` and against the bare endpoint doing the same store read in the
same process, then again while one more client posts ``ingestEvents``
batches of 500 as fast as they are taken. Last, on the embedded store, one
profile reader beside that stream posted to its own server and to a second
server process on a copy of the data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.generator import generate
from bench.load import Load, run
from tests.server import IDGRAPH, free_port

PROFILE = (
    "query($t: String!, $v: String!) { profileByIdentifier(type: $t, value: $v) {"
    " oneId eventCount traitValues identifiers { type identifiers { value } } } }"
)
RESOLVE = (
    "query($ids: [IdentifierInput!]!) { resolveIdentifiers(identifiers: $ids) { oneId status } }"
)
INGEST = "mutation($e: [IdentityEventInput!]!) { ingestEvents(events: $e) { accepted } }"


def write_events(path: Path, persons: int, seed: int, prefix: str = "") -> list[dict]:
    events = generate(persons, seed).events
    if prefix:
        for e in events:
            e["eventId"] = prefix + e["eventId"]
    with path.open("w", encoding="utf-8") as handle:
        for e in events:
            handle.write(json.dumps(e, ensure_ascii=False) + "\n")
    return events


def import_file(path: Path, data: Path, neo4j_uri: str | None) -> float:
    """``idgraph import``; returns its events/s."""
    extra = ["--neo4j-uri", neo4j_uri] if neo4j_uri else []
    done = subprocess.run(
        [IDGRAPH, "import", str(path), "--data-dir", str(data), "--quiet", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"\(([\d,]+) events/s\)", done.stdout)
    if found is None:
        raise RuntimeError(f"import failed: {done.stdout}{done.stderr}")
    return float(found.group(1).replace(",", ""))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def server(data: Path, neo4j_uri: str | None) -> Iterator[tuple[int, float, float]]:
    """A running server: its port, seconds from start to healthy, and RSS (MB) then."""
    port = free_port()
    extra = ["--neo4j-uri", neo4j_uri] if neo4j_uri else []
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.serve_app",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            *extra,
        ],
        env={**os.environ, "IDGRAPH_ADMIN_KEY": "bench"},
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        healthy = time.perf_counter() - started
        yield port, healthy, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=120)


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        answer: dict = json.loads(response.read())
    return answer["data"]


def tags_built(port: int) -> float:
    """Wait until the service has built every tag definition; seconds waited.

    After an import every definition (the RFM tags by default) is built again
    in the background, each customer decided: reads and writes measured then
    would measure that build, once per import, not the service.
    """
    began = time.perf_counter()
    while True:
        found = graphql(port, "{ tagDefinitions { status } }")["tagDefinitions"]
        if all(d["status"] == "READY" for d in found):
            return time.perf_counter() - began
        time.sleep(0.5)


def sample_identifiers(events: list[dict], count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    picked = rng.sample(events, min(count, len(events)))
    return [rng.choice(e["identifiers"]) for e in picked]


def bodies(identifiers: list[dict[str, str]]) -> dict[str, list[bytes]]:
    batches = [identifiers[i : i + 100] for i in range(0, len(identifiers) - 99, 100)]
    return {
        "profile /graphql": [
            json.dumps({"query": PROFILE, "variables": {"t": i["type"], "v": i["value"]}}).encode()
            for i in identifiers
        ],
        "profile bare": [json.dumps(i).encode() for i in identifiers],
        "resolve 100 /graphql": [
            json.dumps({"query": RESOLVE, "variables": {"ids": b}}).encode() for b in batches
        ],
        "resolve 100 bare": [json.dumps({"identifiers": b}).encode() for b in batches],
    }


PATHS = {
    "profile /graphql": "/graphql",
    "profile bare": "/bare/profile",
    "resolve 100 /graphql": "/graphql",
    "resolve 100 bare": "/bare/resolve",
}


def ingest_batches(events: list[dict], size: int = 500) -> list[bytes]:
    return [
        json.dumps({"query": INGEST, "variables": {"e": events[i : i + size]}}).encode()
        for i in range(0, len(events), size)
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def pooled(loads: list[Load]) -> Load:
    """Runs of one kind taken as one: their requests, time and latencies together."""
    return Load(
        sum(x.requests for x in loads),
        sum(x.seconds for x in loads),
        [t for x in loads for t in x.latencies],
        sum(x.errors for x in loads),
    )


def read_table(
    port: int,
    requests: dict[str, list[bytes]],
    stream: list[bytes],
    seconds: float,
    rounds: int = 3,
) -> int:
    """Each read at 1, 10 and 50 clients, bare and over GraphQL, with and without the stream.

    The four runs of one read and client count take turns, ``rounds`` times,
    each ``seconds / rounds`` long: this machine's speed drifts by a third
    from minute to minute, and runs that sample the same minutes compare
    the code rather than the minute each happened to get.
    """
    found: dict[tuple[str, int, bool, str], list[Load]] = {}
    events: dict[tuple[str, int, bool], int] = {}
    offset = 0
    for clients in (1, 10, 50):
        for read in ("profile", "resolve 100"):
            for _ in range(rounds):
                for with_ingest in (False, True):
                    for kind in ("bare", "/graphql"):
                        name = f"{read} {kind}"
                        load, accepted = run(
                            "127.0.0.1",
                            port,
                            PATHS[name],
                            requests[name],
                            clients,
                            seconds / rounds,
                            ingest=stream[offset:] if with_ingest else None,
                        )
                        offset += (accepted + 499) // 500
                        cell = (read, clients, with_ingest)
                        events[cell] = events.get(cell, 0) + accepted
                        found.setdefault((*cell, kind), []).append(load)
    print("| read | clients | ingest stream | req/s | p50 ms | p99 ms | vs bare: req/s | p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for with_ingest in (False, True):
        for clients in (1, 10, 50):
            for read in ("profile", "resolve 100"):
                cell = (read, clients, with_ingest)
                bare = pooled(found[(*cell, "bare")])
                stream_text = (
                    f"{events[cell] / (2 * seconds):,.0f} events/s" if with_ingest else "no"
                )
                for kind in ("bare", "/graphql"):
                    load = pooled(found[(*cell, kind)])
                    versus = " | "
                    if kind == "/graphql":
                        versus = (
                            f" {load.per_second / bare.per_second:.2f}x |"
                            f" {load.quantile(0.99) / bare.quantile(0.99):.2f}x"
                        )
                    print(
                        f"| {read} {kind} | {clients} | {stream_text} | {load.per_second:,.0f} |"
                        f" {ms(load.quantile(0.5))} | {ms(load.quantile(0.99))} |{versus} |"
                    )
                    if load.errors:
                        print(f"  ({load.errors} requests failed)")
    print("\n| read | clients | p99 with the stream / without: bare | /graphql |")
    print("|---|---|---|---|")
    for clients in (1, 10, 50):
        for read in ("profile", "resolve 100"):
            ratios = []
            for kind in ("bare", "/graphql"):
                with_ = pooled(found[(read, clients, True, kind)]).quantile(0.99)
                without = pooled(found[(read, clients, False, kind)]).quantile(0.99)
                ratios.append(f"{with_ / without:.2f}x")
            print(f"| {read} | {clients} | {ratios[0]} | {ratios[1]} |")
    return offset


def apart_table(
    data: Path, requests: list[bytes], stream: list[bytes], seconds: float, rounds: int
) -> None:
    """One profile reader over GraphQL beside the stream into its server and into another.

    The other server is a second process on a copy of the data: its writes
    share the machine's cores with the reads, but not the interpreter of
    the process that serves them. What the stream into the reader's own
    server costs beyond that is the price of sharing the interpreter.
    """
    copy = data.with_name(f"{data.name}-apart")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy)
    found: dict[str, list[Load]] = {}
    events: dict[str, int] = {}
    offset = 0
    try:
        with server(data, None) as (port, _, _), server(copy, None) as (other, _, _):
            for _ in range(rounds):
                for where in ("no stream", "into this server", "into another server process"):
                    load, accepted = run(
                        "127.0.0.1",
                        port,
                        "/graphql",
                        requests,
                        1,
                        seconds / rounds,
                        ingest=None if where == "no stream" else stream[offset:],
                        ingest_port=other if where.endswith("process") else None,
                    )
                    offset += (accepted + 499) // 500
                    found.setdefault(where, []).append(load)
                    events[where] = events.get(where, 0) + accepted
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    alone = pooled(found["no stream"]).quantile(0.99)
    print("\n| profile /graphql, 1 client | stream events/s | p50 ms | p99 ms | p99 / no stream |")
    print("|---|---|---|---|---|")
    for where, loads in found.items():
        load = pooled(loads)
        rate = f"{events[where] / seconds:,.0f}" if events[where] else "-"
        print(
            f"| {where} | {rate} | {ms(load.quantile(0.5))} | {ms(load.quantile(0.99))} |"
            f" {load.quantile(0.99) / alone:.2f}x |"
        )


def ingest_rate(port: int, stream: list[bytes], seconds: float) -> float:
    load, accepted = run("127.0.0.1", port, "/graphql", [b"{}"], 0, seconds, ingest=stream)
    return accepted / load.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--persons", type=int, default=118_000, help="118,000: about 1M identifiers"
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="per measurement, in --read-rounds turns"
    )
    parser.add_argument(
        "--read-rounds", type=int, default=3, help="turns each read table cell takes"
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j to load and serve from")
    parser.add_argument("--scale", action="store_true", help="the scaling table instead")
    parser.add_argument("--workdir", help="keep generated files and data dirs here")
    parser.add_argument(
        "--rounds", type=int, default=3, help="API ingest rounds of the scaling table"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.workdir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        if args.scale:
            scaling(work, args)
        else:
            one_size(work, args)


def one_size(work: Path, args: argparse.Namespace) -> None:
    events_file, data = work / f"events-{args.persons}.ndjson", work / f"data-{args.persons}"
    events = write_events(events_file, args.persons, args.seed)
    stream = ingest_batches(write_events(work / "stream.ndjson", 25_000, args.seed + 1, "stream-"))
    imported = import_file(events_file, data, args.neo4j_uri)
    identifiers = sample_identifiers(events, 3_000, args.seed)
    store = "Neo4j" if args.neo4j_uri else "embedded"
    with server(data, args.neo4j_uri) as (_, first_healthy, first_rss):
        pass
    with server(data, args.neo4j_uri) as (port, healthy, rss):
        assert graphql(port, "{ __typename }")["__typename"] == "Query"
        built = tags_built(port)
        print(
            f"{store} store, {len(events):,} events from {args.persons:,} persons"
            f" (import {imported:,.0f} events/s)\n"
            f"time to healthy: {first_healthy:.1f} s the first start after the import,"
            f" {healthy:.1f} s the next; RSS after open {first_rss:.0f} MB, then {rss:.0f} MB;"
            f" tags built {built:.0f} s after that start\n"
        )
        used = read_table(port, bodies(identifiers), stream, args.seconds, args.read_rounds)
    if args.neo4j_uri is None:  # a Neo4j database is not copied
        apart_table(
            data,
            bodies(identifiers)["profile /graphql"],
            stream[used:],
            args.seconds,
            args.read_rounds,
        )


def scaling(work: Path, args: argparse.Namespace) -> None:
    """One row per size; API ingest measured in rounds that take the sizes in turn.

    One ingest run moves by a tenth with the machine's load from minute to
    minute, as much as the growth being measured: each round sends every
    size the same fresh events, one size after the other, and the table
    gives each size's median round, so a slow minute falls on one round of
    every size rather than on one size.
    """
    sizes = (12_000, 118_000, 354_000)
    rows: dict[int, dict[str, float]] = {}
    for persons in sizes:
        events_file, data = work / f"events-{persons}.ndjson", work / f"data-{persons}"
        events = write_events(events_file, persons, args.seed)
        imported = import_file(events_file, data, args.neo4j_uri)
        identifiers = sample_identifiers(events, 3_000, args.seed)
        rows[persons] = {
            "identifiers": identifier_count(data) if args.neo4j_uri is None else 0,
            "events": len(events),
            "imported": imported,
        }
        del events
        with server(data, args.neo4j_uri) as (_, first_healthy, _rss):
            pass
        with server(data, args.neo4j_uri) as (port, healthy, rss):
            built = tags_built(port)
            requests = bodies(identifiers)["profile /graphql"]
            load, _ = run("127.0.0.1", port, "/graphql", requests, 10, args.seconds)
        rows[persons] |= {
            "rss": rss,
            "first_healthy": first_healthy,
            "healthy": healthy,
            "built": built,
            "p99": load.quantile(0.99),
        }
    rates: dict[int, list[float]] = {persons: [] for persons in sizes}
    for round_ in range(args.rounds):
        fresh = write_events(work / "stream.ndjson", 8_000, args.seed + 1 + round_, f"r{round_}-")
        stream = ingest_batches(fresh)
        for persons in sizes:
            with server(work / f"data-{persons}", args.neo4j_uri) as (port, _, _):
                rates[persons].append(ingest_rate(port, stream, args.seconds * 2))
    print(
        "| identifiers | events | RSS after open MB | healthy s (first / next) |"
        " import events/s | tags built s | API ingest events/s (rounds) |"
        " profile p99 ms (10 clients) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for persons in sizes:
        row = rows[persons]
        rounds = ", ".join(f"{r:,.0f}" for r in rates[persons])
        print(
            f"| {row['identifiers']:,.0f} | {row['events']:,.0f} | {row['rss']:.0f} |"
            f" {row['first_healthy']:.1f} / {row['healthy']:.1f} | {row['imported']:,.0f} |"
            f" {row['built']:.0f} | {statistics.median(rates[persons]):,.0f} ({rounds}) |"
            f" {ms(row['p99'])} |"
        )


def identifier_count(data: Path) -> int:
    db = sqlite3.connect(data / "idgraph.sqlite3")
    try:
        (count,) = db.execute("SELECT count(*) FROM identifiers").fetchone()
        return int(count)
    finally:
        db.close()


if __name__ == "__main__":
    main()
