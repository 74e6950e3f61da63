"""An import reads every line as the API reads an event, whichever way the reader takes."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.config import load_config
from graph.errors import IdgraphError
from graph.event_chunk import ChunkBuilder
from graph.events import clean_event, event_from_json
from graph.identifiers import IdentifierRegistry
from graph.importer import LineReader, PreparedChunk
from graph.phone_exchange import PhoneExchange

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
REGISTRY = IdentifierRegistry(load_config())


def as_the_api_reads_them(block: bytes) -> PreparedChunk:
    """Each line through ``event_from_json`` and ``clean_event``, as an API batch is read."""
    chunk = PreparedChunk()
    builder = ChunkBuilder()
    for number, line in enumerate(block.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))  # as the service decodes a request body
        except ValueError as exc:  # not UTF-8 (a surrogate's bytes included), or not JSON
            chunk.rejected.append((number, "BAD_JSON", str(exc)))
            continue
        try:
            clean = clean_event(len(builder.chunk), event_from_json(obj), REGISTRY, NOW)
        except IdgraphError as exc:
            chunk.rejected.append((number, exc.code, exc.message))
            continue
        builder.add(
            clean.event_id, clean.source, clean.timestamp, clean.keys, clean.blocked, clean.traits
        )
        chunk.warnings += len(clean.warnings)
    chunk.events = builder.chunk
    return chunk


AUTO_ID = re.compile(r"auto-[0-9a-f]{32}")


def comparable(chunk: PreparedChunk) -> dict[str, Any]:
    """The chunk, with the random ids (and their hashes) of events sent without one made alike."""
    found = asdict(chunk)
    found["events"]["event_ids"] = [AUTO_ID.sub("auto", e) for e in chunk.events.event_ids]
    # A random id's hash is as random: only those of ids the lines gave are compared.
    found["events"]["event_hashes"] = [
        0 if AUTO_ID.search(e) else h
        for e, h in zip(chunk.events.event_ids, chunk.events.event_hashes, strict=True)
    ]
    found["events"]["edges"] = list(chunk.events.edges)
    found["rejected"] = [(n, code) for n, code, _ in chunk.rejected]  # decoders word it apart
    return found


identifier = st.one_of(
    st.sampled_from(
        [
            {"type": "phone", "value": "+86 138 0013 8000"},
            {"type": "phone", "value": "13800138000"},
            {"type": "phone", "value": "13800000000"},  # placeholder
            {"type": "phone", "value": "12"},  # invalid
            {"type": "email", "value": " A@Example.com "},
            {"type": "email", "value": "a@example.com"},
            {"type": "email", "value": "test@test.com"},
            {"type": "device_id", "value": "00000000-0000-0000-0000-000000000000"},
            {"type": "cookie_id", "value": "ck-1"},
            {"type": "cookie_id", "value": "ck-\ud800"},  # a lone surrogate, kept as it is
            {"type": "cookie_id", "value": ""},
            {"type": "fax", "value": "1"},  # unknown type
            {"type": "cookie_id", "value": 7},
            {"type": "cookie_id"},
            {"type": "cookie_id", "value": "ck-1", "note": "extra"},
            "cookie",
        ]
    ),
    st.builds(lambda v: {"type": "crm_id", "value": v}, st.text(max_size=6)),
)
field_values = {
    "eventId": st.one_of(st.none(), st.sampled_from(["e1", " e2 ", "", "  ", "e1"]), st.just(5)),
    "source": st.one_of(st.sampled_from(["web", " app ", "", " "]), st.just(None), st.just(1)),
    "timestamp": st.one_of(
        st.none(),
        st.sampled_from(
            [
                "2026-03-01T08:00:00Z",
                "2026-03-01T08:00:00+08:00",
                "2026-03-01T08:00:00",
                "2026-03-01",
                "2026-02-30T00:00:00Z",
                "0001-01-01T00:00:00+01:00",  # before the first moment, once in UTC
                "9999-12-31T23:59:59-01:00",
                "yesterday",
            ]
        ),
        st.just(3),
    ),
    "identifiers": st.one_of(st.lists(identifier, max_size=4), st.just("nope"), st.none()),
    "traits": st.one_of(
        st.none(),
        st.just({}),
        st.just([]),
        st.dictionaries(st.sampled_from(["name", "city"]), st.text(max_size=3), max_size=2),
    ),
}
messy = st.fixed_dictionaries({}, optional={**field_values, "extra": st.just(1)})
valid = st.sampled_from(
    [
        {"type": "phone", "value": "+86 138 0013 8000"},
        {"type": "phone", "value": "8613800138000"},
        {"type": "email", "value": " A@Example.com "},
        {"type": "device_id", "value": "abc-DEF-1"},
        {"type": "cookie_id", "value": "ck-1"},
        {"type": "cookie_id", "value": "ck-\ud800"},
    ]
)
# Most lines of a real file: every field there and every identifier valid.
plain = st.fixed_dictionaries(
    {
        "eventId": st.sampled_from(["e1", " e2 ", "e3"]),
        "source": st.sampled_from(["web", " app "]),
        "identifiers": st.lists(valid, min_size=1, max_size=4),
    },
    optional={
        "timestamp": st.sampled_from(
            [
                "2026-03-01T08:00:00Z",
                "2024-02-29T23:59:59Z",
                "2026-13-01T08:00:00Z",  # no such month
                "2026-03-01T08:00:00.5+08:00",
                "2026-03-01T08:00:00",
            ]
        ),
        "traits": st.one_of(st.just({}), st.just({"name": "王芳", "n": 1})),
    },
)
event = st.one_of(messy, plain)
line = st.one_of(
    st.builds(
        # Non-ASCII as it is, or escaped: only escaped can a lone surrogate reach a value.
        lambda e, plain: json.dumps(e, ensure_ascii=not plain).encode("utf-8", "surrogatepass"),
        event,
        st.booleans(),
    ),
    st.sampled_from([b"", b"   ", b"{not json", b"[]", b"\xff\xfe", b"null"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line, max_size=12))
def test_every_line_reads_as_the_api_reads_it(lines: list[bytes]) -> None:
    block = b"\n".join(lines)
    reader = LineReader(REGISTRY, NOW)
    expected = comparable(as_the_api_reads_them(block))
    assert comparable(reader.prepare(1, block)) == expected
    assert comparable(reader.prepare(1, block)) == expected  # again, each identifier known


def test_workers_tell_each_other_each_new_valid_number_once(tmp_path: Path) -> None:
    def line(event_id: str, phone: str) -> bytes:
        identifiers = [
            {"type": "phone", "value": phone},
            {"type": "cookie_id", "value": "ck-900009"},
        ]
        return json.dumps(
            {"eventId": event_id, "source": "web", "identifiers": identifiers}
        ).encode()

    path = str(tmp_path / "phones.sqlite3")
    PhoneExchange.create(path)
    listener = PhoneExchange(path)
    reader = LineReader(REGISTRY, NOW, PhoneExchange(path))
    reader.prepare(1, line("a", "+86 139 0013 9000") + b"\n" + line("b", "13900139000"))
    assert listener.hear() == ["+8613900139000"]
    reader.prepare(3, line("c", "0086-139-0013-9000") + b"\n" + line("d", "not a phone"))
    assert listener.hear() == []
    listener.tell(["+8613700137000"])
    assert listener.hear() == ["+8613700137000"]  # its own too
    other = LineReader(REGISTRY, NOW, PhoneExchange(path))
    other.trade_phones()
    heard = other.prepare(1, line("e", "137 0013 7000") + b"\n" + line("f", "+8613600136000"))
    assert listener.hear() == ["+8613600136000"]  # not the number it heard of
    assert [k for k, _ in heard.events.nodes] == ["phone", "cookie_id", "phone"]
    assert heard.events.nodes[0] == ("phone", "+8613700137000")
