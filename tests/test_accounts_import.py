"""Account events through ``idgraph import`` end as they do through ``ingestEvents``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from service.app import create_app
from tests.conftest import Api, empty_neo4j, make_settings
from tests.test_cli import idgraph, write_ndjson

EVENTS: list[dict[str, Any]] = [
    {
        "eventId": "a1",
        "source": "crm",
        "timestamp": "2026-03-01T08:00:00Z",
        "identifiers": [
            {"type": "email", "value": "Li@Acme.com.cn"},
            {"type": "phone", "value": "13800138001"},
        ],
        "account": {
            "id": "crm-1",
            "name": "Acme",
            "domain": "acme.com.cn",
            "title": "采购总监",
            "department": "采购部",
        },
    },
    {
        "eventId": "a2",
        "source": "crm",
        "identifiers": [{"type": "email", "value": "wang@globex.cn"}],
        "account": {"domain": "www.globex.cn", "title": "CTO"},
    },
    {
        "eventId": "a3",
        "source": "web_form",
        "identifiers": [{"type": "email", "value": "zhao@initech.io"}],
        "account": {"name": "Initech", "title": "Engineer"},
    },
    {
        "eventId": "a4",
        "source": "crm",
        "identifiers": [
            {"type": "phone", "value": "13800138001"},
            {"type": "cookie_id", "value": "ck-acct-0001"},
        ],
        "account": {"id": "crm-1", "title": "Head of Procurement"},
    },
    {
        "eventId": "a5",
        "source": "web",
        "identifiers": [{"type": "cookie_id", "value": "ck-77777"}],
        "account": {"domain": "not a domain"},
    },
    # No account named: the CRM verified a corporate email, so its domain links it
    # (a subdomain's address too); free mail and a look-alike domain link nothing.
    {
        "eventId": "a6",
        "source": "crm",
        "timestamp": "2026-03-02T08:00:00Z",
        "identifiers": [{"type": "email", "value": "zhou@sh.acme.com.cn"}],
    },
    {
        "eventId": "a7",
        "source": "crm",
        "identifiers": [{"type": "email", "value": "zhou@qq.com"}, {"type": "phone", "value": ""}],
    },
    {
        "eventId": "a8",
        "source": "crm",
        "identifiers": [{"type": "email", "value": "qian@notacme.com.cn"}],
    },
    {
        "eventId": "a9",
        "source": "web",
        "identifiers": [{"type": "email", "value": "sun@acme.com.cn"}],
    },
]

QUERY = """{ accounts(first: 50) { edges { node { id name domains
  contacts { edges { node { title department seniority source roles
    profile { identifiers { type identifiers { value } } } } } } } } } }"""


def accounts(api: Api) -> list[Any]:
    """Accounts with each contact told by its identifiers, not its OneID (minted per store)."""
    found = []
    for edge in api(QUERY)["accounts"]["edges"]:
        node = edge["node"]
        contacts = sorted(
            json.dumps(
                {
                    **c["node"],
                    "profile": sorted(
                        (g["type"], i["value"])
                        for g in c["node"]["profile"]["identifiers"]
                        for i in g["identifiers"]
                    ),
                },
                ensure_ascii=False,
                sort_keys=True,
            )
            for c in node["contacts"]["edges"]
        )
        found.append((node["id"], node["name"], node["domains"], contacts))
    return found


def test_import_links_accounts_as_the_api_does(tmp_path: Path, store_uri: str | None) -> None:
    source = write_ndjson(tmp_path / "events.ndjson", [json.dumps(e) for e in EVENTS])
    via_api = make_settings(tmp_path / "api", neo4j_uri=store_uri)
    with TestClient(create_app(via_api)) as client:
        results = Api(client).ingest(*EVENTS)["results"]
        assert [r["status"] for r in results] == ["ACCEPTED"] * 4 + ["REJECTED"] + ["ACCEPTED"] * 4
        expected = accounts(Api(client))
    assert [a[0] for a in expected] == ["crm-1", "domain:globex.cn", "name:initech"]
    acme = [json.loads(c) for c in expected[0][3]]
    assert sorted((c["source"], sorted(v for _, v in c["profile"])) for c in acme) == [
        ("DOMAIN", ["zhou@sh.acme.com.cn"]),
        ("EVENT", ["+8613800138001", "ck-acct-0001", "li@acme.com.cn"]),
    ]

    if store_uri is not None:
        empty_neo4j(store_uri)
    target = ["--neo4j-uri", store_uri] if store_uri else ["--data-dir", str(tmp_path / "cli")]
    result = idgraph("import", str(source), *target, "--quiet")
    assert result.returncode == 1, result.stderr  # the line with a bad domain is rejected
    assert "INVALID_EVENT" in result.stderr
    settings = make_settings(tmp_path / "cli", neo4j_uri=store_uri)
    with TestClient(create_app(settings)) as client:
        assert accounts(Api(client)) == expected
    again = idgraph("import", str(source), *target, "--quiet")
    assert "0 events" in again.stdout
    with TestClient(create_app(settings)) as client:
        assert accounts(Api(client)) == expected
