"""profileCount and profiles(where) on both stores, against counts made here from API reads.

The expected count evaluates each condition in this file, independently of
the service's evaluator, over every customer's tags, traits and event count
as ``profile`` reads them; random conditions mix indexed leaves (tags, a
trait a tag reads) with ones decided customer by customer (a trait no tag
reads, a profile field).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NOW, Api
from tests.test_tags_api import define, graph_of, order

CITIES = ["上海", "北京", "广州", "成都"]
PEOPLE = 60
COUNT = "query($w: JSON) { profileCount(where: $w) }"
PAGE = """query($w: JSON, $first: Int, $after: String) {
  profiles(where: $w, first: $first, after: $after) {
    totalCount edges { cursor node { oneId } } pageInfo { hasNextPage endCursor } } }"""
EVERYONE = """query($id: ID!) { profile(oneId: $id) {
  oneId eventCount traits { name value } tags { tag { id } value } } }"""


def phone(n: int) -> str:
    return f"1370013{n:04d}"


def person(n: int, pick: random.Random) -> list[dict[str, Any]]:
    traits: dict[str, Any] = {}
    if n % 5:
        traits["city"] = pick.choice(CITIES)
    if n % 3:
        traits["birth_year"] = pick.randrange(1980, 2005)
    orders = [
        order(f"a{n}-{k}", phone(n), pick.randrange(0, 80), float(pick.randrange(10, 400)))
        for k in range(pick.choice([0, 0, 1, 1, 2, 3, 5]))
    ]
    view = {
        "eventId": f"v{n}",
        "source": "web",
        "timestamp": (NOW - timedelta(days=pick.randrange(0, 80))).isoformat(),
        "identifiers": [{"type": "phone", "value": phone(n)}],
        "name": "page_view",
        "traits": traits,
    }
    return [view, *orders]


def people() -> list[list[dict[str, Any]]]:
    """Each person's events, the same on every call."""
    pick = random.Random(7)
    return [person(n, pick) for n in range(PEOPLE)]


def populate(api: Api) -> list[str]:
    define(api, "spent", compute={"aggregate": "sum", "event": "order_paid", "property": "amount"})
    define(
        api,
        "tier",
        cases=[
            {"value": "T1", "when": {"trait": "city", "op": "in", "value": ["上海", "北京"]}},
            {"value": "T2", "when": {"trait": "city", "op": "eq", "value": "广州"}},
        ],
        otherwise="other",
    )
    define(
        api,
        "frequent",
        when={"aggregate": "count", "event": "order_paid", "op": "gte", "value": 3},
    )
    events = [e for sent in people() for e in sent]
    for start in range(0, len(events), 100):
        api.ingest(*events[start : start + 100])
    one_ids = [api.one_id("phone", phone(n)) for n in range(PEOPLE)]
    return [o for o in one_ids if o is not None]


def facts_of(api: Api, one_ids: list[str]) -> list[dict[str, Any]]:
    """What each customer (in person order) has, read through the API or counted from events."""
    found = []
    for one_id, sent in zip(one_ids, people(), strict=True):
        profile = api(EVERYONE, {"id": one_id})["profile"]
        stamps = [datetime.fromisoformat(e["timestamp"]) for e in sent]
        month = NOW - timedelta(days=30)
        found.append(
            {
                "tags": {t["tag"]["id"]: t["value"] for t in profile["tags"]},
                "traits": {t["name"]: t["value"] for t in profile["traits"]},
                "eventCount": profile["eventCount"],
                "lastSeen": max(stamps),
                "orders30": sum(
                    1
                    for e in sent
                    if e["name"] == "order_paid" and datetime.fromisoformat(e["timestamp"]) >= month
                ),
            }
        )
    return found


def number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def passes(op: str, seen: Any, value: Any) -> bool:
    """The rule language's tests, as documented, for the kinds used here."""
    if seen is None:
        return op == "missing"
    if op in ("exists", "has"):
        return True
    if op == "missing":
        return False
    if op == "eq":
        if number(seen) and number(value):
            return bool(seen == value)
        return type(seen) is type(value) and bool(seen == value)
    if op == "ne":
        return not passes("eq", seen, value)
    if op == "in":
        return any(passes("eq", seen, v) for v in value)
    if not (number(seen) and number(value)) and not (
        type(seen) is type(value) and isinstance(seen, str | datetime)
    ):
        return False
    return {"gt": seen > value, "gte": seen >= value, "lt": seen < value, "lte": seen <= value}[op]


def holds(condition: dict[str, Any], facts: dict[str, Any]) -> bool:
    if "all" in condition:
        return all(holds(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts) for c in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], facts)
    value = condition.get("value")
    if "tag" in condition:
        seen = facts["tags"].get(condition["tag"])
    elif "trait" in condition:
        seen = facts["traits"].get(condition["trait"])
    elif "aggregate" in condition:
        seen = facts["orders30"]  # the one aggregate the conditions here use
    else:
        seen = facts[condition["profile"]]
    if isinstance(value, dict):  # {"daysAgo": N}
        value = NOW - timedelta(days=value["daysAgo"])
    return passes(condition["op"], seen, value)


leaves = st.one_of(
    st.builds(
        lambda op, v: {"tag": "tier", "op": op, "value": v},
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["T1", "T2", "other"]),
    ),
    st.builds(
        lambda op, v: {"tag": "spent", "op": op, "value": v},
        st.sampled_from(["gt", "gte", "lt", "lte", "eq"]),
        st.integers(0, 900),
    ),
    st.builds(lambda op: {"tag": "frequent", "op": op}, st.sampled_from(["has"])),
    st.builds(
        lambda op, v: {"trait": "city", "op": op, "value": v},
        st.sampled_from(["eq", "ne", "in"]),
        st.sampled_from(CITIES),
    ).map(lambda c: {**c, "value": [c["value"], "上海"]} if c["op"] == "in" else c),
    st.sampled_from([{"trait": "city", "op": "missing"}, {"trait": "city", "op": "exists"}]),
    st.builds(
        lambda op, v: {"trait": "birth_year", "op": op, "value": v},
        st.sampled_from(["gte", "lt", "eq"]),
        st.integers(1980, 2005),
    ),
    st.builds(
        lambda op, v: {"profile": "eventCount", "op": op, "value": v},
        st.sampled_from(["gt", "lte"]),
        st.integers(0, 6),
    ),
    st.builds(
        lambda op, v: {"profile": "lastSeen", "op": op, "value": {"daysAgo": v}},
        st.sampled_from(["gte", "lt"]),
        st.integers(0, 80),
    ),
    st.builds(
        lambda op, v: {
            "aggregate": "count",
            "event": "order_paid",
            "within": {"days": 30},
            "op": op,
            "value": v,
        },
        st.sampled_from(["gte", "eq", "lt"]),
        st.integers(0, 4),
    ),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    ),
    max_leaves=5,
)


def test_counts_equal_a_count_made_from_what_the_api_reads(tagged: Api) -> None:
    one_ids = populate(tagged)
    everyone = facts_of(tagged, one_ids)
    assert len(everyone) == PEOPLE
    assert tagged(COUNT, {"w": None})["profileCount"] == len(one_ids)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(conditions)
    def agrees(condition: dict[str, Any]) -> None:
        expected = sum(holds(condition, f) for f in everyone)
        assert tagged(COUNT, {"w": condition})["profileCount"] == expected, condition

    agrees()


def test_pages_have_no_gaps_or_repeats_while_members_change(tagged: Api) -> None:
    one_ids = populate(tagged)
    where = {"trait": "city", "op": "exists"}
    before = tagged(PAGE, {"w": where, "first": 500})["profiles"]
    members = [e["node"]["oneId"] for e in before["edges"]]
    assert before["totalCount"] == len(members) > 20
    seen: list[str] = []
    after = None
    arrived = []
    for step in range(100):
        page = tagged(PAGE, {"w": where, "first": 7, "after": after})["profiles"]
        seen.extend(e["node"]["oneId"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        # Someone new meets it, and someone not yet paged to gets a trait too.
        tagged.ingest(
            {
                "eventId": f"new{step}",
                "source": "web",
                "identifiers": [{"type": "phone", "value": phone(500 + step)}],
                "traits": {"city": "上海"},
            }
        )
        arrived.append(tagged.one_id("phone", phone(500 + step)))
    assert len(seen) == len(set(seen))
    assert set(members) <= set(seen)  # nobody who stayed a member was skipped
    assert set(seen) == set(members) | set(arrived)  # and newcomers come last, once
    assert seen[: len(members)] == members
    assert len(one_ids) == PEOPLE


def test_counts_follow_merges_splits_and_definitions_at_once(tagged: Api) -> None:
    populate(tagged)
    t1 = {"tag": "tier", "op": "eq", "value": "T1"}
    count = tagged(COUNT, {"w": t1})["profileCount"]
    tagged.ingest(
        {
            "eventId": "moved",
            "source": "crm",
            "identifiers": [{"type": "phone", "value": phone(0)}],
            "traits": {"city": "北京"},
        }
    )
    # phone(0) had no city (n % 5 == 0): it joins T1 as the ingest returns.
    assert tagged(COUNT, {"w": t1})["profileCount"] == count + 1
    everyone = tagged(COUNT, {"w": None})["profileCount"]
    browser = [
        {"type": "cookie_id", "value": "ck-bridge-1"},
        {"type": "cookie_id", "value": "ck-second-2"},
    ]
    tagged.ingest({"eventId": "browsing", "source": "web", "identifiers": browser})
    assert tagged(COUNT, {"w": None})["profileCount"] == everyone + 1
    bought = [{"type": "phone", "value": phone(1)}, browser[0]]
    tagged.ingest({"eventId": "bought", "source": "web", "identifiers": bought})
    assert tagged(COUNT, {"w": None})["profileCount"] == everyone  # merged
    tagged(
        "mutation($i: IdentifierInput!) { removeIdentifier(identifier: $i) { oneIds } }",
        {"i": browser[0]},
    )
    assert tagged(COUNT, {"w": None})["profileCount"] == everyone + 1  # split again
    define(tagged, "tier", when={"trait": "city", "op": "eq", "value": "广州"})
    graph_of(tagged).tags.build()
    canton = {"trait": "city", "op": "eq", "value": "广州"}
    assert (
        tagged(COUNT, {"w": {"tag": "tier", "op": "has"}})["profileCount"]
        == tagged(COUNT, {"w": canton})["profileCount"]
    )


def test_bad_conditions_and_cursors_have_their_codes(tagged: Api) -> None:
    populate(tagged)
    unknown_tag = {"all": [{"trait": "city", "op": "exists"}, {"tag": "nope", "op": "has"}]}
    error = tagged.errors(COUNT, {"w": unknown_tag})[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    assert error["message"] == "$.where.all[1]: no tag 'nope' is defined"
    error = tagged.errors(COUNT, {"w": {"trait": "ctiy", "op": "exists"}})[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    assert "ctiy" in error["message"]
    error = tagged.errors(COUNT, {"w": {"tag": "spent", "op": "gt"}})[0]
    assert error["extensions"]["code"] == "INVALID_RULE"
    page = tagged(PAGE, {"w": None, "first": 2})["profiles"]
    other = {"trait": "city", "op": "exists"}
    error = tagged.errors(PAGE, {"w": other, "after": page["pageInfo"]["endCursor"]})[0]
    assert error["extensions"]["code"] == "INVALID_CURSOR"
    error = tagged.errors(PAGE, {"w": None, "after": "bm90IGEgY3Vyc29y"})[0]
    assert error["extensions"]["code"] == "INVALID_CURSOR"


def test_a_condition_on_account_links_counts_their_contacts(tagged: Api) -> None:
    one_ids = populate(tagged)
    tagged(
        "mutation($i: AccountInput!) { upsertAccount(input: $i) { id } }",
        {"i": {"id": "acme", "name": "Acme", "industry": "manufacturing"}},
    )
    link = """mutation($a: ID!, $o: ID!, $t: String) {
      linkContact(accountId: $a, oneId: $o, title: $t) { oneId } }"""
    for one_id, title in zip(one_ids[:3], ["CEO", "Engineer", "CFO"], strict=True):
        tagged(link, {"a": "acme", "o": one_id, "t": title})
    industry = {"field": "industry", "op": "eq", "value": "manufacturing"}
    assert tagged(COUNT, {"w": {"account": industry}})["profileCount"] == 3
    senior = {"field": "seniority", "op": "gte", "value": "VP"}
    assert tagged(COUNT, {"w": {"account": senior}})["profileCount"] == 2
    none = {"account": industry, "quantifier": "none"}
    assert tagged(COUNT, {"w": none})["profileCount"] == PEOPLE - 3
