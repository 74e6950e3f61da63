"""Synthetic multi-channel identity events with ground truth.

Reproduces what real channel data does to an identity graph: anonymous cookies
that never log in, several devices and cookies per person, a WeChat OpenID per
mini-program plus a UnionID, phone numbers in many formats, placeholder
values, store kiosks used by many people, family tablets shared by two or
three, couples sharing one email, internet-cafe browsers.

Ground truth maps each identifier's canonical key to its owner: a person, or,
for identifiers used by several people (kiosks, family tablets, shared
emails, cafe cookies, placeholders), a label of its own, since no single
customer owns them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Key = tuple[str, str]
START = datetime(2025, 1, 1, tzinfo=UTC)
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉"]
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = "芳伟娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
MOBILE_PREFIXES = (
    [f"13{d}" for d in range(10)]
    + [f"15{d}" for d in "012356789"]
    + [f"18{d}" for d in range(10)]
    + ["166", "173", "175", "176", "177", "178", "198", "199"]
)
PLACEHOLDERS: list[tuple[str, str]] = [
    ("phone", "13800000000"),
    ("phone", "00000000000"),
    ("email", "test@test.com"),
    ("email", "null"),
    ("device_id", "00000000-0000-0000-0000-000000000000"),
    ("device_id", "unknown"),
    ("cookie_id", "undefined"),
    ("member_id", "0"),
]


def phone_variants(digits: str, rng: random.Random) -> str:
    """One of the ways people and systems write a Chinese mobile number."""
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in digits)
    choices = [
        digits,
        f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}",
        f"86-{digits}",
        f"0086{digits}",
        f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
        f"+86{digits}",
        full_width,
        f" {digits} ",
        f"({digits[:3]}) {digits[3:7]} {digits[7:]}",
    ]
    return rng.choice(choices)


def email_variant(email: str, rng: random.Random) -> str:
    local, domain = email.split("@")
    return rng.choice(
        [email, email.upper(), f" {email} ", f"{local.capitalize()}@{domain.upper()}"]
    )


def event_body(
    rng: random.Random, event_id: str, source: str, ids: list[tuple[str, str]]
) -> dict[str, Any]:
    """An event as the API takes it, at a random moment of the year from ``START``."""
    when = START + timedelta(seconds=rng.randrange(365 * 86400))
    return {
        "eventId": event_id,
        "source": source,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "identifiers": [{"type": t, "value": v} for t, v in ids],
    }


@dataclass
class Person:
    pid: str
    name: str
    city: str
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    crm_id: str | None = None
    member_id: str | None = None
    unionid: str | None = None
    openids: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    anonymous_cookies: list[str] = field(default_factory=list)
    habit: int = 0


class Generator:
    def __init__(self, persons: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = persons
        self.truth: dict[Key, str] = {}
        self.events: list[dict[str, Any]] = []
        self.actors: dict[str, str] = {}
        self._serial = 0

    def _id(self, prefix: str, width: int = 12) -> str:
        self._serial += 1
        tail = "".join(self.rng.choice("0123456789abcdef") for _ in range(width))
        return f"{prefix}{self._serial:x}{tail}"

    def _own(self, key: Key, owner: str) -> None:
        self.truth.setdefault(key, owner)

    def _event(
        self, source: str, ids: list[tuple[str, str]], person: Person | None, traits: bool = False
    ) -> None:
        event = event_body(self.rng, f"ev-{len(self.events)}", source, ids)
        if traits and person is not None:
            event["traits"] = {"name": person.name, "city": person.city}
        if self.rng.random() < 0.01:
            t, v = self.rng.choice(PLACEHOLDERS)
            event["identifiers"].append({"type": t, "value": v})
        if person is not None:
            self.actors[event["eventId"]] = person.pid
        self.events.append(event)

    def person(self, index: int) -> Person:
        r = self.rng
        p = Person(
            f"p{index}",
            r.choice(SURNAMES) + r.choice(GIVEN) + r.choice(GIVEN),
            r.choice(CITIES),
            habit=r.choice([0, 0, 0, 1, 2]),
        )
        for _ in range(1 if r.random() < 0.85 else 2):
            p.phones.append(
                r.choice(MOBILE_PREFIXES) + "".join(r.choice("0123456789") for _ in range(8))
            )
        if r.random() < 0.75:
            for _ in range(1 if r.random() < 0.9 else 2):
                p.emails.append(
                    f"{self._id('u', 4)}@{r.choice(['qq.com', '163.com', 'gmail.com'])}"
                )
        if r.random() < 0.5:
            p.crm_id = f"CRM{self._id('', 6).upper()}"
        if r.random() < 0.55:
            p.member_id = f"M{self._id('', 8)}"
        if r.random() < 0.65:
            p.unionid = "oU" + self._id("", 24)
            p.openids = ["oP" + self._id("", 24) for _ in range(r.randint(1, 3))]
        p.devices = [self._id("dev-", 20).upper() for _ in range(r.choice([0, 1, 1, 1, 2]))]
        p.cookies = [self._id("ck.", 16) for _ in range(r.randint(1, 3))]
        p.anonymous_cookies = [self._id("ck.", 16) for _ in range(r.choice([0, 0, 1]))]
        for t, values in (
            ("phone", ["+86" + x for x in p.phones]),
            ("email", p.emails),
            ("device_id", [d.lower() for d in p.devices]),
            ("cookie_id", p.cookies),
            ("cookie_id", p.anonymous_cookies),
            ("wechat_openid", p.openids),
        ):
            for v in values:
                self._own((t, v), p.pid)
        for t, single in (
            ("crm_id", p.crm_id),
            ("member_id", p.member_id),
            ("wechat_unionid", p.unionid),
        ):
            if single:
                self._own((t, single), p.pid)
        return p

    def phone(self, p: Person) -> tuple[str, str]:
        return ("phone", phone_variants(self.rng.choice(p.phones), self.rng))

    def email(self, p: Person, shared: str | None = None) -> tuple[str, str]:
        chosen = shared if shared is not None else self.rng.choice(p.emails)
        return ("email", email_variant(chosen, self.rng))

    def login(self, p: Person, shared_email: str | None) -> tuple[str, str] | None:
        """Sign-in identifier: most people stick to one way of signing in."""
        options: list[tuple[str, str]] = [self.phone(p)]
        if p.member_id:
            options.append(("member_id", p.member_id))
        if p.emails or shared_email:
            options.append(self.email(p, shared_email))
        if self.rng.random() < 0.85:
            return options[p.habit % len(options)]
        return self.rng.choice(options)

    def activity(self, p: Person, shared_email: str | None) -> None:
        r = self.rng
        if p.crm_id or p.member_id or r.random() < 0.6:
            # A registration lists the contact points the customer gave.
            ids = [("crm_id", p.crm_id)] if p.crm_id else []
            ids += [
                ("phone", phone_variants(x, r))
                for n, x in enumerate(p.phones)
                if n == 0 or r.random() < 0.7
            ]
            if shared_email:
                ids.append(self.email(p, shared_email))
            else:
                ids += [
                    self.email(p, x) for n, x in enumerate(p.emails) if n == 0 or r.random() < 0.7
                ]
            if p.member_id:
                ids.append(("member_id", p.member_id))
            self._event("crm", ids, p, traits=True)
        if p.unionid:
            # Most mini-programs ask for the phone number once (getPhoneNumber).
            authorised = r.random() < 0.9
            for n, openid in enumerate(p.openids):
                for visit in range(r.randint(1, 3)):
                    ids = [("wechat_openid", openid), ("wechat_unionid", p.unionid)]
                    if (authorised and n == 0 and visit == 0) or r.random() < 0.2:
                        ids.append(self.phone(p))
                    self._event("wechat_miniapp", ids, p, traits=r.random() < 0.3)
        for device in p.devices:
            for _ in range(r.randint(1, 4)):
                variant = device if r.random() < 0.5 else device.lower()
                login = self.login(p, shared_email)
                ids = [("device_id", variant)] + ([login] if login and r.random() < 0.7 else [])
                self._event("app", ids, p, traits=r.random() < 0.2)
        for cookie in p.cookies:
            for _ in range(r.randint(1, 4)):
                login = self.login(p, shared_email)
                ids = [("cookie_id", cookie)] + ([login] if login and r.random() < 0.6 else [])
                self._event("web", ids, p)
            if p.devices and r.random() < 0.1:
                self._event("app_webview", [("cookie_id", cookie), ("device_id", p.devices[0])], p)
        for cookie in p.anonymous_cookies:
            for _ in range(r.randint(1, 3)):
                self._event("web", [("cookie_id", cookie)], p)
        if r.random() < 0.02:
            self._event("web", [("phone", "12345"), ("email", "not-an-email")], p)

    def shared_device(
        self, label: str, users: list[Person], visits: tuple[int, int], shared_email: dict[str, str]
    ) -> None:
        device = self._id("dev-", 20).upper()
        self._own(("device_id", device.lower()), label)
        for p in users:
            for _ in range(self.rng.randint(*visits)):
                login = self.login(p, shared_email.get(p.pid))
                if login:
                    self._event("app", [("device_id", device), login], p)

    def cafe_cookie(self, label: str, users: list[Person], shared_email: dict[str, str]) -> None:
        cookie = self._id("ck.", 16)
        self._own(("cookie_id", cookie), label)
        for p in users:
            login = self.login(p, shared_email.get(p.pid))
            if login:
                self._event("web", [("cookie_id", cookie), login], p)

    def generate(self) -> None:
        r = self.rng
        persons = [self.person(i) for i in range(self.n)]
        shared_email: dict[str, str] = {}
        households: list[list[Person]] = []
        order = persons[:]
        r.shuffle(order)
        i = 0
        while i < len(order) - 3:
            size = r.choice([1, 1, 1, 2, 2, 3])
            households.append(order[i : i + size])
            i += size
        for n, house in enumerate(households):
            if len(house) >= 2 and r.random() < 0.15:
                email = f"family{n}@{r.choice(['qq.com', '163.com'])}"
                self._own(("email", email), f"shared-email-{n}")
                for p in house[:2]:
                    shared_email[p.pid] = email
        for p in persons:
            self.activity(p, shared_email.get(p.pid))
        for n, house in enumerate(households):
            if len(house) >= 2 and r.random() < 0.3:
                self.shared_device(f"tablet-{n}", house, (1, 3), shared_email)
        for k in range(max(1, self.n // 400)):
            self.shared_device(
                f"kiosk-{k}",
                r.sample(persons, min(len(persons), r.randint(20, 120))),
                (1, 2),
                shared_email,
            )
        for k in range(max(1, self.n // 1000)):
            self.cafe_cookie(
                f"cafe-{k}", r.sample(persons, min(len(persons), r.randint(10, 60))), shared_email
            )
        self.events.sort(key=lambda e: e["timestamp"])


@dataclass
class Dataset:
    events: list[dict[str, Any]]
    truth: dict[Key, str]
    actors: dict[str, str]  # eventId -> the person who caused it


def generate(persons: int, seed: int) -> Dataset:
    g = Generator(persons, seed)
    g.generate()
    return Dataset(g.events, g.truth, g.actors)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write synthetic identity events as NDJSON.")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="-")
    parser.add_argument("--truth", help="also write the ground truth as CSV (type,value,owner)")
    parser.add_argument(
        "--b2b",
        type=int,
        metavar="COMPANIES",
        help="B2B mode (bench.b2b): this many companies' CRM and web events instead",
    )
    parser.add_argument("--accounts", help="B2B mode: also write the accounts as JSON lines")
    parser.add_argument(
        "--behaviour",
        type=float,
        metavar="PER_PERSON",
        help="also a year of orders and page views, about this many events a person",
    )
    args = parser.parse_args()
    if args.b2b:
        from bench.b2b import generate_b2b  # it builds on this module's names

        b2b = generate_b2b(args.b2b, args.seed)
        events, truth = b2b.events, dict[Key, str]()
        if args.accounts:
            with open(args.accounts, "w", encoding="utf-8") as handle:
                for account in b2b.accounts:
                    handle.write(json.dumps(account, ensure_ascii=False) + "\n")
    else:
        data = generate(args.persons, args.seed)
        events, truth = data.events, data.truth
        if args.behaviour:
            from bench.behaviour import behaviour_events

            extra = behaviour_events(truth, args.seed, args.behaviour)
            events = sorted([*events, *extra], key=lambda e: e["timestamp"])
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    for event in events:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
    if out is not sys.stdout:
        out.close()
    if args.truth and truth:
        with open(args.truth, "w", encoding="utf-8") as handle:
            for (t, v), owner in sorted(truth.items()):
                handle.write(f"{t},{v},{owner}\n")


if __name__ == "__main__":
    main()
