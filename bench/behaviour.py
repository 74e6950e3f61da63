"""Behavioural events for the generated people: a year of orders and page views.

Each person gets a habit - steady, seasonal, gone dormant, come back,
bought once, never bought - and a spend level and favourite category; their
orders and page views over the year from ``generator.START`` follow it,
with the seasonal peaks of Chinese retail (Singles' Day in November, the
run-up to the Spring Festival). Every event carries one identifier the
person owns, so it adds no evidence between people. A random generator of
its own keeps the identity events exactly as they were.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

from bench.generator import START, Key

CATEGORIES = ["护肤", "彩妆", "母婴", "食品", "数码", "服饰", "家居", "运动"]
HABITS = ["steady", "steady", "seasonal", "seasonal", "dormant", "resurrected", "once", "browser"]
# Relative activity per month of the year (January first): the Spring Festival run-up,
# the 618 mid-year sale, Singles' Day and December.
SEASON = [1.3, 0.8, 0.9, 0.9, 1.0, 1.6, 0.9, 0.9, 1.0, 1.1, 2.6, 1.5]
CHANNELS: dict[str, tuple[str, ...]] = {  # source -> identifier types it knows a buyer by
    "tmall": ("phone",),
    "jd": ("phone", "email"),
    "app": ("member_id", "device_id", "phone"),
    "wechat_miniapp": ("wechat_openid", "wechat_unionid"),
    "web": ("cookie_id", "email"),
}


def behaviour_events(
    truth: dict[Key, str], seed: int, per_person: float = 8.0
) -> list[dict[str, Any]]:
    """Orders and page views of every person in ``truth`` (owners ``p<n>``), in time order."""
    rng = random.Random(seed * 7919 + 17)
    owned: dict[str, list[Key]] = defaultdict(list)
    for key, owner in sorted(truth.items()):
        if owner.startswith("p") and owner[1:].isdigit():
            owned[owner].append(key)
    events: list[dict[str, Any]] = []
    for owner in sorted(owned, key=lambda o: int(o[1:])):
        events.extend(_person(rng, owner, owned[owner], per_person, len(events)))
    events.sort(key=lambda e: e["timestamp"])
    return events


def _person(
    rng: random.Random, owner: str, keys: list[Key], per_person: float, first: int
) -> list[dict[str, Any]]:
    habit = rng.choice(HABITS)
    spend = math.exp(rng.gauss(5.0, 0.8))  # a typical order, in yuan
    favourite = rng.choice(CATEGORIES)
    active = _active_days(rng, habit)
    count = max(1, int(rng.expovariate(1 / per_person)))
    found: list[dict[str, Any]] = []
    for n in range(count):
        day = _seasonal_day(rng, active)
        if day is None:
            continue
        when = START + timedelta(days=day, seconds=rng.randrange(86400))
        buys = habit != "browser" and rng.random() < (0.35 if habit != "once" or n == 0 else 0.0)
        channel = rng.choice(list(CHANNELS))
        mine = [k for k in keys if k[0] in CHANNELS[channel]] or keys
        key = rng.choice(mine)
        category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
        event: dict[str, Any] = {
            "eventId": f"bh-{first + len(found)}-{owner}",
            "source": channel,
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "identifiers": [{"type": key[0], "value": key[1]}],
        }
        if buys:
            amount = round(spend * math.exp(rng.gauss(0, 0.5)), 2)
            event["name"] = "order_paid"
            event["properties"] = {"amount": amount, "category": category, "channel": channel}
        else:
            event["name"] = "page_view"
            event["properties"] = {"category": category, "channel": channel}
        found.append(event)
    return found


def _active_days(rng: random.Random, habit: str) -> list[tuple[int, int]]:
    """The spans of the year (days from START) when a person of ``habit`` does anything."""
    if habit == "dormant":
        return [(0, rng.randint(60, 200))]
    if habit == "resurrected":
        gap = rng.randint(120, 200)
        return [(0, gap - 90), (gap, 365)]
    if habit == "once":
        start = rng.randrange(365)
        return [(start, min(365, start + 3))]
    return [(0, 365)]


def _seasonal_day(rng: random.Random, spans: list[tuple[int, int]]) -> int | None:
    """A day in ``spans``, months weighted by ``SEASON``; None if a draw falls outside."""
    for _ in range(4):
        month = rng.choices(range(12), weights=SEASON)[0]
        day = int(month * 365 / 12) + rng.randrange(30)
        if any(lo <= day < hi for lo, hi in spans):
            return day
    return None
