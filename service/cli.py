"""The ``idgraph`` command: serve, import, export, export-segment, rebuild, retag, rfm, schema."""

from __future__ import annotations

import argparse
import csv
import gc
import json
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import IdgraphError
from graph.events import ImportedAccount
from graph.importer import PreparedChunks, default_workers, without_cycle_collection
from service.settings import Settings, ensure_admin_key

if TYPE_CHECKING:
    from graph.identity_graph import IdentityGraph


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if args.data_dir is not None:
        settings.data_dir = Path(args.data_dir)
    if args.config is not None:
        settings.config_path = Path(args.config)
    for name in ("neo4j_uri", "neo4j_user", "neo4j_password", "neo4j_database"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    if getattr(args, "neo4j_resolve_every", None) is not None:
        settings.neo4j_resolve_every = args.neo4j_resolve_every
    return settings


def open_graph(settings: Settings) -> IdentityGraph:
    from graph.identity_graph import IdentityGraph

    return IdentityGraph(settings.load_config(), settings.open_store())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import EVENT_LOOP, create_app, serving_process

    settings = _settings(args)
    settings.host = args.host or settings.host
    settings.port = args.port or settings.port
    key, created = ensure_admin_key(settings)
    if created:
        print(
            f"idgraph: created an admin key, kept in {settings.data_dir / 'admin.key'}:\n"
            f"  {key}\nSend it as 'Authorization: Bearer <key>'. It is printed only this once.",
            flush=True,
        )
    app = create_app(settings, background=True)
    serving_process(app)
    print(f"idgraph: GraphiQL at http://{settings.host}:{settings.port}/graphql", flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        loop=EVENT_LOOP,
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config = settings.load_config()
    rejected: list[tuple[int, str, str]] = []
    counts = {"ACCEPTED": 0, "DUPLICATE": 0, "REJECTED": 0}
    warnings = 0
    started = time.perf_counter()
    now = datetime.now(UTC)
    workers = args.workers or default_workers()
    with (
        without_cycle_collection(),
        open(args.file, "rb") as handle,
        # Workers parse the first chunks while the store opens; for the embedded
        # store they also write each chunk's rows, which it copies inside SQLite.
        PreparedChunks(
            handle, config, now, args.batch_size, workers, spill=settings.embedded
        ) as chunks,
    ):
        # The graph's modules (numpy among them) load while the workers, which
        # need none of them, read the first chunks.
        from graph.identity_graph import IdentityGraph

        graph = IdentityGraph(config, settings.open_store())
        try:
            load = graph.bulk_load(now)
            accounts: list[ImportedAccount] = []
            for chunk in chunks:
                rejected.extend(chunk.rejected)
                skipped = load.add_chunk(chunk.events)
                duplicates = len(skipped)
                if chunk.accounts:
                    seen = set(skipped)
                    accounts += [
                        ImportedAccount(event_id, source, tuple(keys), account, p not in seen)
                        for p, event_id, source, keys, account in chunk.accounts
                    ]
                counts["DUPLICATE"] += duplicates
                counts["ACCEPTED"] += len(chunk.events) - duplicates
                warnings += chunk.warnings
                if not args.quiet:
                    rate = sum(counts.values()) / max(time.perf_counter() - started, 1e-9)
                    print(
                        f"\r{counts['ACCEPTED']} events accepted, {len(rejected)} lines rejected, "
                        f"{rate:,.0f} events/s",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
            if not args.quiet:
                print("\nresolving customers...", end="", file=sys.stderr, flush=True)
            load.finish()
            graph.record_imported_accounts(accounts)  # as the API links them, once resolved
            # Tags were not decided event by event: every definition is built again
            # (by the service, in the background), every rollup made from the events.
            graph.tags.stale_all()
        finally:
            graph.close()
    elapsed = time.perf_counter() - started
    if not args.quiet:
        print(file=sys.stderr)
    for number, code, message in sorted(rejected):
        print(f"line {number}: {code}: {message}", file=sys.stderr)
    total = counts["ACCEPTED"] + counts["DUPLICATE"]
    print(
        f"imported {counts['ACCEPTED']} events ({counts['DUPLICATE']} duplicates skipped, "
        f"{len(rejected)} lines rejected, {warnings} warnings) in {elapsed:.1f}s "
        f"({total / max(elapsed, 1e-9):,.0f} events/s)"
    )
    return 1 if rejected else 0


def cmd_export(args: argparse.Namespace) -> int:
    from service.export import profile_document

    graph = open_graph(_settings(args))
    fmt = args.format or ("csv" if str(args.file).endswith(".csv") else "profiles")
    count = 0
    try:
        with open(args.file, "w", encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                writer = csv.writer(handle)
                writer.writerow(["type", "value", "one_id"])
                for (type_name, value), one_id in graph.store.assignments():
                    writer.writerow([type_name, value, one_id or ""])
                    count += 1
            else:
                seen: set[str] = set()
                for _, one_id in graph.store.assignments():
                    if one_id is None or one_id in seen:
                        continue
                    seen.add(one_id)
                    profile = graph.profile(one_id)
                    if profile is not None:
                        handle.write(
                            json.dumps(profile_document(profile), ensure_ascii=False) + "\n"
                        )
                        count += 1
    finally:
        graph.close()
    print(f"exported {count} {'rows' if fmt == 'csv' else 'profiles'} to {args.file}")
    return 0


def cmd_export_segment(args: argparse.Namespace) -> int:
    from graph.errors import NotFound
    from graph.tags.moments import parse_instant

    as_of = None
    if args.as_of is not None:
        as_of = parse_instant(args.as_of)
        if as_of is None:
            print(f"idgraph: --as-of {args.as_of!r} is not an ISO 8601 time", file=sys.stderr)
            return 2
    types = None if args.types is None else [t.strip() for t in args.types.split(",") if t.strip()]
    fmt = args.format or ("csv" if str(args.file).endswith(".csv") else "ndjson")
    graph = open_graph(_settings(args))
    try:
        segment = graph.segments.segment(args.segment)
        if segment is None:
            raise NotFound(f"no segment {args.segment!r} is defined")
        unknown = sorted(set(types or ()) - set(graph.config.types))
        if unknown:
            print(f"idgraph: no identifier type {unknown[0]!r}", file=sys.stderr)
            return 2
        rows = graph.segments.export(segment, types, as_of)
        count = _write_members(args.file, fmt, rows, types or sorted(graph.config.types))
    finally:
        graph.close()
    when = "" if as_of is None else f" as of {as_of.isoformat()}"
    print(f"exported {count} members of segment {args.segment!r}{when} to {args.file}")
    return 0


def _write_members(
    path: str, fmt: str, rows: Iterable[tuple[str, dict[str, list[str]]]], types: list[str]
) -> int:
    """CSV: a OneID and a column per type (several values joined by |); NDJSON: as the API."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(["one_id", *types])
        for one_id, found in rows:
            if writer is not None:
                writer.writerow([one_id, *("|".join(found.get(t, [])) for t in types)])
            else:
                document = {"oneId": one_id, "identifiers": {t: found.get(t, []) for t in types}}
                handle.write(json.dumps(document, ensure_ascii=False) + "\n")
            count += 1
    return count


def cmd_rebuild(args: argparse.Namespace) -> int:
    graph = open_graph(_settings(args))
    try:
        started = time.perf_counter()
        graph.rebuild()
        print(f"rebuilt the partition in {time.perf_counter() - started:.1f}s")
    finally:
        graph.close()
    return 0


def cmd_retag(args: argparse.Namespace) -> int:
    graph = open_graph(_settings(args))
    try:
        started = time.perf_counter()
        count = graph.tags.retag()
        print(
            f"retagged {count} customers from their events in {time.perf_counter() - started:.1f}s"
        )
    finally:
        graph.close()
    return 0


def cmd_rfm(args: argparse.Namespace) -> int:
    from graph.errors import Disabled

    graph = open_graph(_settings(args))
    try:
        if not graph.rfm.enabled:
            raise Disabled("RFM is turned off: set enabled = true under [rfm] in the config")
        started = time.perf_counter()
        model = graph.rfm.recompute()
        if model is None:
            print("nobody has ordered yet: no bins cut, the RFM tags in force stay")
            return 0
        decided = graph.tags.build()
        print(f"RFM bins cut over {model.customers} customers who ordered:")
        for name, bins in (
            ("recency", model.recency),
            ("frequency", model.frequency),
            ("monetary", model.monetary),
        ):
            print(f"  {name:<9} edges {', '.join(f'{e:g}' for e in bins.edges)}")
        for warning in model.warnings:
            print(f"  warning: {warning}")
        print(f"{decided} customers' tags decided in {time.perf_counter() - started:.1f}s")
    finally:
        graph.close()
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from service.schema import sdl

    sys.stdout.write(sdl())
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", help="where the embedded store keeps its data (default: data)"
    )
    common.add_argument("--config", help="a TOML file merged over the shipped defaults")
    common.add_argument(
        "--neo4j-uri", help="use the Neo4j store at this Bolt URI (default: the embedded store)"
    )
    common.add_argument("--neo4j-user")
    common.add_argument("--neo4j-password")
    common.add_argument("--neo4j-database", help="default: neo4j")
    top = argparse.ArgumentParser(prog="idgraph", description="Customer identity graph service.")
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", parents=[common], help="run the GraphQL service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=cmd_serve)
    imp = sub.add_parser("import", parents=[common], help="bulk-load identity events from NDJSON")
    imp.add_argument("file")
    imp.add_argument(
        "--batch-size",
        type=int,
        default=20_000,
        help="events per durable chunk (each chunk is one transaction; default 20000)",
    )
    imp.add_argument(
        "--workers",
        type=int,
        help="processes that parse and normalise lines (default: one per core, at most 4)",
    )
    imp.add_argument(
        "--neo4j-resolve-every",
        type=_positive,
        metavar="N",
        help="into Neo4j, resolve in parts of at most so many events and new identifiers,"
        " one transaction each (default 40000, or IDGRAPH_NEO4J_RESOLVE_EVERY)",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress line")
    imp.set_defaults(run=cmd_import)
    exp = sub.add_parser(
        "export",
        parents=[common],
        help="write the identifier-to-OneID mapping (.csv) or profiles (NDJSON)",
    )
    exp.add_argument("file")
    exp.add_argument("--format", choices=["csv", "profiles"])
    exp.set_defaults(run=cmd_export)
    seg = sub.add_parser(
        "export-segment",
        parents=[common],
        help="write a saved segment's members (.csv or NDJSON) with their identifiers",
    )
    seg.add_argument("segment", help="the segment's id")
    seg.add_argument("file")
    seg.add_argument("--types", help="identifier types to write, comma-separated (default: all)")
    seg.add_argument("--as-of", help="the members at this ISO 8601 time instead of now")
    seg.add_argument("--format", choices=["csv", "ndjson"])
    seg.set_defaults(run=cmd_export_segment)
    rebuild = sub.add_parser(
        "rebuild", parents=[common], help="recompute every customer, e.g. after a config change"
    )
    rebuild.set_defaults(run=cmd_rebuild)
    retag = sub.add_parser(
        "retag",
        parents=[common],
        help="decide every customer's tags again from its events, rollups made anew",
    )
    retag.set_defaults(run=cmd_retag)
    rfm = sub.add_parser(
        "rfm",
        parents=[common],
        help="cut the RFM bins again over every customer who ordered, and tag everyone by them",
    )
    rfm.set_defaults(run=cmd_rfm)
    schema = sub.add_parser("schema", parents=[common], help="print the GraphQL SDL")
    schema.set_defaults(run=cmd_schema)
    return top


def fewer_collections() -> None:
    """Run CPython's cyclic garbage collector less often.

    A bulk import and a serving process hold many long-lived objects; with
    the default thresholds (700, 10, 10) the collector rescans them over and
    over, which cost about 40% of a bulk import and put tens of milliseconds
    into a read's tail now and then. Our objects do not form cycles;
    refcounting frees them, and full collections still run.
    """
    gc.set_threshold(100_000, 50, 100)


def main(argv: list[str] | None = None) -> int:
    fewer_collections()
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except IdgraphError as exc:
        print(f"idgraph: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
