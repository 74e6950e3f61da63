"""API ingest speed: ``ingestEvents`` over HTTP in batches of 500 against ``idgraph serve``.

    python -m bench.api_ingest --persons 4000 [--behaviour 8] [--tags] [--neo4j-uri bolt://...]

One client sends batches one after another to a real server process on
loopback; events/s counts accepted events over the wall time of all requests.
With ``--neo4j-uri`` the server uses that (empty) Neo4j instead of the
embedded store. A Neo4j just started compiles its queries and warms its JIT
on the first batches (they run at about half speed), so the table gives the
rate after the first ``--warm-up`` batches beside the rate of the whole run.
``--behaviour N`` adds about N orders and page views a person (bench.behaviour);
``--tags`` defines the twenty rule tags of ``bench.tag_rules`` first, so every
batch also decides the tags of every customer it touches; ``--untagged``
deletes the shipped ``lifecycle`` tag first, so no tag is decided at all (the
identity work alone, as a baseline for what tags cost). ``--rfm`` sends the
warm-up batches, cuts the RFM bins over them and waits for the four RFM
tags to be built, then times the remaining batches with those tags in force.
``--segments`` defines the ten saved segments of ``bench.segments`` (with
``--tags``, whose tags they read), so every batch also decides their members.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.behaviour import behaviour_events
from bench.generator import generate
from bench.segments import SEGMENTS
from bench.tag_rules import definitions
from tests.server import running_server

INGEST = "mutation($e: [IdentityEventInput!]!) { ingestEvents(events: $e) { accepted rejected } }"
DEFINE = "mutation($input: TagDefinitionInput!) { defineTag(input: $input) { id } }"
DEFINE_SEGMENT = "mutation($input: SegmentInput!) { defineSegment(input: $input) { id } }"


def post(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        f"{url}/graphql",
        data=body,
        headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        found: dict[str, Any] = json.loads(response.read())
    if "errors" in found:
        raise RuntimeError(found["errors"])
    return found


def send(url: str, body: bytes) -> int:
    """Post one batch; how many of its events were accepted."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=body,
        headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        accepted: int = json.loads(response.read())["data"]["ingestEvents"]["accepted"]
    return accepted


def cut_rfm(url: str) -> None:
    """Cut the RFM bins over what is stored and wait until every customer has its RFM tags."""
    cut = post(url, "mutation { recomputeRfm { customers } }", {})["data"]["recomputeRfm"]
    if cut is None:
        raise RuntimeError("nobody has ordered in the warm-up batches: use --behaviour")
    ready = "{ tagDefinitions { id status } }"
    while any(d["status"] != "READY" for d in post(url, ready, {})["data"]["tagDefinitions"]):
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=4_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--neo4j-uri", help="an empty Neo4j to serve from")
    parser.add_argument("--warm-up", type=int, default=20, help="batches before the steady rate")
    parser.add_argument("--behaviour", type=float, default=0, help="orders and views a person")
    parser.add_argument("--tags", action="store_true", help="define the twenty rule tags first")
    parser.add_argument("--untagged", action="store_true", help="delete the shipped tag first")
    parser.add_argument("--rfm", action="store_true", help="time with the RFM tags in force")
    parser.add_argument(
        "--segments", action="store_true", help="define the ten saved segments of bench.segments"
    )
    args = parser.parse_args()
    data = generate(args.persons, args.seed)
    events = data.events
    if args.behaviour:
        extra = behaviour_events(data.truth, args.seed, args.behaviour)
        events = sorted([*events, *extra], key=lambda e: e["timestamp"])
    bodies = [
        json.dumps({"query": INGEST, "variables": {"e": events[i : i + args.batch]}}).encode()
        for i in range(0, len(events), args.batch)
    ]
    with (
        tempfile.TemporaryDirectory() as data_dir,
        running_server(
            Path(data_dir), "bench", ["--neo4j-uri", args.neo4j_uri] if args.neo4j_uri else []
        ) as (url, _),
    ):
        if args.untagged:
            post(url, 'mutation { deleteTag(id: "lifecycle") { id } }', {})
        if args.tags:
            for definition in definitions():
                post(url, DEFINE, {"input": definition})
        if args.segments:
            for segment_id, where in SEGMENTS.items():
                given = {"id": segment_id, "name": segment_id, "where": where}
                post(url, DEFINE_SEGMENT, {"input": given})
        if args.rfm:
            for body in bodies[: args.warm_up]:
                send(url, body)
            cut_rfm(url)
            bodies = bodies[args.warm_up :]
        accepted: list[int] = []
        ended: list[float] = []
        started = time.perf_counter()
        for body in bodies:
            accepted.append(send(url, body))
            ended.append(time.perf_counter())
    took = ended[-1] - started
    warm = 0 if args.rfm else min(args.warm_up, len(bodies) - 1)
    steady = sum(accepted[warm:]) / (ended[-1] - (ended[warm - 1] if warm else started))
    print(f"{len(events)} events in {len(bodies)} batches of {args.batch}\n")
    print(f"| path | seconds | events/s | events/s after {warm} batches |")
    print("|---|---|---|---|")
    store = "Neo4j" if args.neo4j_uri else "embedded"
    tagged = f", {len(definitions()) + 1} tags" if args.tags else ""
    tagged = f"{tagged}{', no tags' if args.untagged else ''}{', RFM tags' if args.rfm else ''}"
    tagged = f"{tagged}{', 10 segments' if args.segments else ''}"
    print(
        f"| ingestEvents over HTTP, batches of {args.batch}, {store} store{tagged} | {took:.1f} |"
        f" {sum(accepted) / took:,.0f} | {steady:,.0f} |"
    )


if __name__ == "__main__":
    main()
