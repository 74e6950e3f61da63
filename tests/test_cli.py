"""The idgraph command: import, export, rebuild, schema."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import uuid
from pathlib import Path

from starlette.testclient import TestClient

from service.app import create_app
from service.schema import sdl
from tests.conftest import Api, event, make_settings
from tests.server import IDGRAPH
from tests.test_resolution import REMOVE

ROOT = Path(__file__).resolve().parent.parent


def idgraph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IDGRAPH, *args], capture_output=True, text=True, timeout=120)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_ndjson(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_schema_command_matches_the_committed_sdl() -> None:
    result = idgraph("schema")
    assert result.returncode == 0
    assert result.stdout == sdl()
    assert (ROOT / "schema.graphql").read_text("utf-8") == result.stdout, (
        "schema.graphql is stale: run `idgraph schema > schema.graphql`"
    )


def test_import_reports_rejected_lines_and_export_writes_both_formats(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = {
        "eventId": "e1",
        "source": "crm",
        "timestamp": "2026-03-01T08:00:00Z",
        "identifiers": [
            {"type": "phone", "value": "+86 138 0013 8000"},
            {"type": "email", "value": "A@Example.com"},
        ],
        "traits": {"name": "王芳"},
    }
    second = {
        "eventId": "e2",
        "source": "web",
        "identifiers": [
            {"type": "cookie_id", "value": "ck-900000"},
            {"type": "email", "value": "a@example.com"},
        ],
    }
    source = write_ndjson(
        tmp_path / "events.ndjson",
        [
            json.dumps(good, ensure_ascii=False),
            "{not json",
            json.dumps({"source": "web", "identifiers": [{"type": "fax", "value": "1"}]}),
            "",
            json.dumps(second),
            json.dumps(good, ensure_ascii=False),
            json.dumps({"source": "web", "identifiers": "nope"}),
        ],
    )
    result = idgraph("import", str(source), "--data-dir", str(data), "--quiet")
    assert result.returncode == 1, result.stderr
    assert "line 2: BAD_JSON" in result.stderr
    assert "line 3: UNKNOWN_IDENTIFIER_TYPE" in result.stderr
    assert "line 7: INVALID_EVENT" in result.stderr
    assert "imported 2 events (1 duplicates skipped, 3 lines rejected" in result.stdout

    mapping = tmp_path / "map.csv"
    assert idgraph("export", str(mapping), "--data-dir", str(data)).returncode == 0
    rows = read_csv(mapping)
    assert {(r["type"], r["value"]) for r in rows} == {
        ("phone", "+8613800138000"),
        ("email", "a@example.com"),
        ("cookie_id", "ck-900000"),
    }
    assert len({r["one_id"] for r in rows}) == 1

    profiles = tmp_path / "profiles.ndjson"
    assert idgraph("export", str(profiles), "--data-dir", str(data)).returncode == 0
    (line,) = profiles.read_text("utf-8").splitlines()
    profile = json.loads(line)
    assert profile["oneId"] == rows[0]["one_id"]
    assert profile["eventCount"] == 2
    assert [t["value"] for t in profile["traits"]] == ["王芳"]


def test_an_import_names_each_customer_with_a_fresh_uuid4(tmp_path: Path) -> None:
    source = write_ndjson(
        tmp_path / "events.ndjson",
        [
            json.dumps(
                {
                    "eventId": f"e{n}",
                    "source": "web",
                    "identifiers": [{"type": "cookie_id", "value": f"ck-{n:06d}"}],
                }
            )
            for n in range(200)
        ],
    )
    data = tmp_path / "data"
    assert idgraph("import", str(source), "--data-dir", str(data), "--quiet").returncode == 0
    mapping = tmp_path / "map.csv"
    assert idgraph("export", str(mapping), "--data-dir", str(data)).returncode == 0
    one_ids = [r["one_id"] for r in read_csv(mapping)]
    assert len(set(one_ids)) == len(one_ids) == 200
    for one_id in one_ids:
        parsed = uuid.UUID(one_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (one_id, 4, uuid.RFC_4122)


def test_an_import_leaves_no_scratch_files_and_reads_duplicates_back(tmp_path: Path) -> None:
    """Workers hand the embedded store each chunk's rows in a scratch file; none outlive it."""
    lines = [
        json.dumps(
            {
                "eventId": f"e{n % 150}",  # the last 50 lines repeat earlier ids
                "source": "web",
                "identifiers": [
                    {"type": "cookie_id", "value": f"ck-{n:06d}"},
                    {"type": "email", "value": f"u{n % 150}@example.com"},
                ],
                "traits": {"n": n},
            }
        )
        for n in range(200)
    ]
    source = write_ndjson(tmp_path / "events.ndjson", lines)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    data = tmp_path / "data"
    done = subprocess.run(
        [IDGRAPH, "import", str(source), "--data-dir", str(data), "--quiet", "--batch-size", "40"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr
    assert "imported 150 events (50 duplicates skipped" in done.stdout
    assert list(scratch.iterdir()) == []
    profiles = tmp_path / "profiles.ndjson"
    assert idgraph("export", str(profiles), "--data-dir", str(data)).returncode == 0
    found = [json.loads(line) for line in profiles.read_text("utf-8").splitlines()]
    assert len(found) == 150  # one customer per email, its first cookie only
    assert sorted(t["value"] for p in found for t in p["traits"]) == list(range(150))


def test_import_takes_any_line_ending_and_rejects_a_line_that_is_not_utf8(
    tmp_path: Path,
) -> None:
    def line(event_id: str, cookie: str) -> bytes:
        event = {
            "eventId": event_id,
            "source": "web",
            "identifiers": [
                {"type": "cookie_id", "value": cookie},
                {"type": "email", "value": "a@example.com"},
            ],
            # A line separator inside a value does not end the line.
            "traits": {"note": "one\u2028line"},
        }
        return json.dumps(event, ensure_ascii=False).encode()

    source = tmp_path / "events.ndjson"
    source.write_bytes(
        line("e1", "ck-900001")
        + b"\r\n"
        + b'{"source": "web\xff"}\n'
        + line("e2", "ck-900002")
        + b"\r\n"
        # Valid JSON, but half a surrogate pair is not a character.
        + b'{"source": "web", "identifiers": [{"type": "cookie_id", "value": "ck-9\\ud800"}]}\n'
    )
    data = tmp_path / "data"
    result = idgraph("import", str(source), "--data-dir", str(data), "--quiet")
    assert result.returncode == 1, result.stderr
    assert "line 2: BAD_JSON" in result.stderr
    assert "line 4: INVALID_EVENT: identifiers[0].value is not valid Unicode" in result.stderr
    assert "imported 2 events (0 duplicates skipped, 2 lines rejected" in result.stdout
    mapping = tmp_path / "map.csv"
    assert idgraph("export", str(mapping), "--data-dir", str(data)).returncode == 0
    rows = read_csv(mapping)
    assert len(rows) == 3 and len({r["one_id"] for r in rows}) == 1


def test_rebuild_after_a_config_change_applies_new_rules(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = write_ndjson(
        tmp_path / "events.ndjson",
        [
            json.dumps(
                {
                    "eventId": "a",
                    "source": "web",
                    "identifiers": [
                        {"type": "cookie_id", "value": "ck-300000"},
                        {"type": "email", "value": "x@corp.com"},
                    ],
                }
            ),
            json.dumps(
                {
                    "eventId": "b",
                    "source": "web",
                    "identifiers": [
                        {"type": "cookie_id", "value": "ck-300000"},
                        {"type": "phone", "value": "13800138000"},
                    ],
                }
            ),
        ],
    )
    assert idgraph("import", str(source), "--data-dir", str(data), "--quiet").returncode == 0
    mapping = tmp_path / "before.csv"
    idgraph("export", str(mapping), "--data-dir", str(data))
    assert len({r["one_id"] for r in read_csv(mapping)}) == 1
    config = tmp_path / "idgraph.toml"
    config.write_text(
        '[types.email]\nnormaliser = "email"\nstrong = true\nblocked = ["x@corp.com"]\n', "utf-8"
    )
    result = idgraph("rebuild", "--data-dir", str(data), "--config", str(config))
    assert result.returncode == 0, result.stderr
    after = tmp_path / "after.csv"
    idgraph("export", str(after), "--data-dir", str(data), "--config", str(config))
    rows = {r["type"]: r["one_id"] for r in read_csv(after)}
    assert rows["email"] == "" and rows["cookie_id"] == rows["phone"] != ""


def test_bad_config_fails_at_start_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[types.phone]\nnormaliser = "phone"\nlimit = 0\n', "utf-8")
    result = idgraph("rebuild", "--data-dir", str(tmp_path / "d"), "--config", str(config))
    assert result.returncode == 2
    assert "CONFIG_ERROR" in result.stderr and "types.phone.limit" in result.stderr
    config.write_text('[types.phone]\nnormaliser = "soundex"\n', "utf-8")
    result = idgraph("rebuild", "--data-dir", str(tmp_path / "d"), "--config", str(config))
    assert "types.phone.normaliser" in result.stderr


def test_a_bad_number_in_the_environment_fails_naming_the_variable(tmp_path: Path) -> None:
    for name, value in (
        ("IDGRAPH_PORT", "eighty"),
        ("IDGRAPH_PORT", "70000"),
        ("IDGRAPH_NEO4J_RESOLVE_EVERY", "0"),
    ):
        result = subprocess.run(
            [IDGRAPH, "export", str(tmp_path / "m.csv"), "--data-dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, name: value},
        )
        assert result.returncode == 2
        assert "CONFIG_ERROR" in result.stderr and name in result.stderr
        assert "Traceback" not in result.stderr


FULL_PROFILE = """
query P($id: ID!) {
  profile(oneId: $id) {
    oneId
    identifiers { type identifiers { type value firstSeen lastSeen sources } }
    traits { name value source observedAt }
    traitValues firstSeen lastSeen sources eventCount aliases
    history { kind oneId others at reason eventIds evidence }
  }
}
"""


def test_exported_profiles_read_as_the_api_answers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TestClient(create_app(make_settings(data))) as client:
        api = Api(client)
        api.ingest(event("a", "web", ("cookie_id", "ck-111111"), ("email", "a@x.com"), city="上海"))
        api.ingest(event("b", "app", ("device_id", "dev-222222"), ("phone", "13800138000")))
        api.ingest(event("c", "crm", ("email", "a@x.com"), ("phone", "13800138000"), vip=True))
        api.ingest(event("d", "crm", ("phone", "13800138000"), ("crm_id", "C1")))
        api(REMOVE, {"id": {"type": "email", "value": "a@x.com"}})
        one_ids = {api.one_id("cookie_id", "ck-111111"), api.one_id("crm_id", "C1")}
        answers = {o: api(FULL_PROFILE, {"id": o})["profile"] for o in one_ids}
    assert all(a["history"] for a in answers.values())
    exported = tmp_path / "profiles.ndjson"
    assert idgraph("export", str(exported), "--data-dir", str(data)).returncode == 0
    lines = [json.loads(line) for line in exported.read_text("utf-8").splitlines()]
    assert {p["oneId"]: p for p in lines} == answers


def test_an_import_keeps_integers_beyond_64_bits_exactly(tmp_path: Path) -> None:
    """A 20-digit account number is an integer in JSON; it must not come back rounded."""
    big, low = 2**70 + 1, -(2**63) - 1
    source = write_ndjson(
        tmp_path / "events.ndjson",
        [
            json.dumps(event("a", "crm", ("email", "a@x.com"), account=big, order="1" * 25)),
            json.dumps(event("b", "crm", ("email", "b@x.com"), balance=low)),
            json.dumps(event("c", "crm", ("email", "c@x.com"), small=2**63 - 1)),
        ],
    )
    data = tmp_path / "data"
    result = idgraph("import", str(source), "--data-dir", str(data), "--quiet")
    assert result.returncode == 0, result.stderr
    exported = tmp_path / "profiles.ndjson"
    assert idgraph("export", str(exported), "--data-dir", str(data)).returncode == 0
    traits = [json.loads(line)["traitValues"] for line in exported.read_text("utf-8").splitlines()]
    assert sorted(traits, key=str) == sorted(
        [{"account": big, "order": "1" * 25}, {"balance": low}, {"small": 2**63 - 1}], key=str
    )
