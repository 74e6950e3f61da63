"""Bulk import speed: ``idgraph import`` against naive networkx connected components.

    python -m bench.import_speed --persons 20000

Both read the same NDJSON file in the same run. The baseline parses each line,
adds its identifiers and edges to a networkx graph and runs
``connected_components``: no normalisation, no rules, nothing written. idgraph
normalises, applies every rule and writes everything durably to a fresh data
dir, as the command a user runs (a separate process, start-up included).

The two alternate for ``--rounds`` rounds and the table gives the median of
each, so that a moment when the machine is busy weighs on neither alone;
every round's seconds are printed too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx

from bench.generator import generate


def write_events(path: Path, persons: int, seed: int) -> int:
    data = generate(persons, seed)
    with path.open("w", encoding="utf-8") as handle:
        for event in data.events:
            handle.write(json.dumps(event, ensure_ascii=False) + "\n")
    return len(data.events)


def baseline(path: Path) -> float:
    """Seconds to load the events and find connected components, naively."""
    started = time.perf_counter()
    graph: nx.Graph[tuple[str, str]] = nx.Graph()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            keys = [(i["type"], i["value"]) for i in event["identifiers"]]
            graph.add_nodes_from(keys)
            graph.add_edges_from(itertools.pairwise(keys))
    components = sum(1 for _ in nx.connected_components(graph))
    assert components > 0
    return time.perf_counter() - started


def idgraph_import(path: Path, *extra: str) -> float:
    """Seconds for ``idgraph import`` into a fresh data dir, process start included."""
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("idgraph")),
                "import",
                str(path),
                "--data-dir",
                data_dir,
                "--quiet",
                *extra,
            ],
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - started
        # Exit 1 means some lines were rejected: the generator writes a few bad ones on purpose.
        assert done.returncode in (0, 1), done.stdout + done.stderr[-2000:]
        print(done.stdout.strip())
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    baseline_runs: list[float] = []
    import_runs: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "events.ndjson"
        events = write_events(path, args.persons, args.seed)
        for _ in range(args.rounds):
            baseline_runs.append(baseline(path))
            import_runs.append(idgraph_import(path))
    base, ours = statistics.median(baseline_runs), statistics.median(import_runs)
    print(f"{events} events from {args.persons} persons\n")
    print("| method | seconds | events/s | vs baseline |")
    print("|---|---|---|---|")
    print(
        f"| naive networkx connected components (baseline) | {base:.1f} | "
        f"{events / base:,.0f} | 1.00x |"
    )
    print(
        f"| idgraph import (durable, all rules) | {ours:.1f} | {events / ours:,.0f} | "
        f"{base / ours:.2f}x |"
    )
    print(
        "\nrounds, seconds: baseline "
        + ", ".join(f"{b:.1f}" for b in baseline_runs)
        + "; idgraph "
        + ", ".join(f"{o:.1f}" for o in import_runs)
    )


if __name__ == "__main__":
    main()
