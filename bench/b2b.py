"""Synthetic B2B data with ground truth: companies, their domains, their people, CRM events.

What account linking meets in real CRM and web data:

- company domains under multi-level public suffixes (``.com.cn``, ``.co.uk``,
  ``.com.au``), and one on a private suffix (``github.io``);
- look-alike companies with no account: ``notacme.com``, ``acme.com.ar``,
  ``acme-cn.com``, another ``github.io`` site;
- subsidiaries, to three levels, each with its own domain;
- people with Chinese and English titles, emails on the company domain or a
  subdomain of it (``li@sh.acme.com.cn``), some on free mail;
- CRM contact events naming the account (by id, by domain or by name), CRM
  events that only carry a corporate email (verified: a domain link), web
  form sign-ups (not verified: a suggestion at most), consumers on free mail.

Ground truth is where each person works, and which of those links the
evidence supports: a CRM event naming the account, or a CRM-verified email
on the account's domain. A web form alone supports nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bench.generator import SURNAMES, event_body

STEMS = [
    "huaxin", "zhongke", "tianyu", "jinpeng", "ruida", "hengtai", "lianchuang", "boyuan",
    "kaiwei", "xinghe", "anke", "mingde", "yuanfang", "shengshi", "haoyun", "dingxin",
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wonka", "stark",
    "wayne", "tyrell", "cyberdyne", "soylent", "oscorp", "massive", "aperture", "virtucon",
]  # fmt: skip
SUFFIXES = ["com", "com.cn", "cn", "net.cn", "co.uk", "com.au", "com.hk", "io", "de", "co.jp"]
LOOK_ALIKES = ["not{stem}.com", "{stem}.com.ar", "{stem}-cn.com", "{stem}.com.evil.io"]
FREE_MAIL = ["qq.com", "163.com", "126.com", "gmail.com", "foxmail.com", "vip.qq.com", "sina.com"]
INDUSTRIES = ["manufacturing", "software", "retail", "finance", "logistics", "healthcare"]
REGIONS = ["华东", "华北", "华南", "西南", "EMEA", "APAC"]
PINYIN = ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou"]
TITLES = [
    ("董事长", "董事会"), ("总经理", "总经办"), ("CEO", "Management"), ("首席技术官", "技术部"),
    ("CFO", "Finance"), ("副总裁", "销售部"), ("VP of Engineering", "Engineering"),
    ("副总经理", "总经办"), ("采购总监", "采购部"), ("IT Director", "IT"), ("Head of Data", "Data"),
    ("财务总监", "财务部"), ("采购经理", "采购部"), ("IT经理", "信息部"),
    ("Product Manager", "Product"),
    ("Team Lead", "Engineering"), ("项目主管", "项目部"), ("工程师", "技术部"),
    ("Software Engineer", "Engineering"), ("采购专员", "采购部"), ("总经理助理", "总经办"),
    ("Assistant to the CEO", "Management"), ("Analyst", "Finance"), ("销售代表", "销售部"),
]  # fmt: skip


@dataclass
class Company:
    id: str
    name: str
    domain: str
    account: bool  # a look-alike has none: nobody may be linked to it
    parent: str | None = None
    industry: str = ""
    region: str = ""


@dataclass
class Contact:
    pid: str
    company: Company
    email: str
    phone: str
    title: str
    department: str


@dataclass
class B2BData:
    accounts: list[dict[str, Any]]  # GraphQL AccountInput fields, parents before children
    events: list[dict[str, Any]]
    works_at: dict[str, str]  # pid -> company id (look-alikes included)
    supported: set[tuple[str, str]]  # (pid, account id) the evidence supports
    emails: dict[str, str]  # pid -> an email that finds the person's customer
    largest: str  # the account with the most contacts
    companies: list[Company] = field(default_factory=list)


class B2BGenerator:
    def __init__(self, companies: int, seed: int, largest: int = 200) -> None:
        self.rng = random.Random(seed)
        self.n = companies
        self.largest = largest
        self.events: list[dict[str, Any]] = []
        self.works_at: dict[str, str] = {}
        self.supported: set[tuple[str, str]] = set()
        self.emails: dict[str, str] = {}
        self._people = 0

    def companies(self) -> list[Company]:
        r = self.rng
        made: list[Company] = []
        domains: set[str] = set()
        for k in range(self.n):
            stem = f"{r.choice(STEMS)}{k}"
            domain = f"{stem}.{r.choice(SUFFIXES)}" if k else f"{stem}.com.cn"
            if k == 1:
                domain = f"{stem}.github.io"  # a private suffix: its own registrable domain
            parent = None
            real = [c for c in made if c.account]
            if real and r.random() < 0.2:
                parent = r.choice(real).id  # an earlier one: subsidiaries of subsidiaries too
            company = Company(
                f"crm-{k}",
                f"{stem.title()} 有限公司" if k % 2 else f"{stem.title()} Ltd",
                domain,
                True,
                parent,
                r.choice(INDUSTRIES),
                r.choice(REGIONS),
            )
            made.append(company)
            domains.add(domain)
            if r.random() < 0.3:
                fake = r.choice(LOOK_ALIKES).format(stem=stem)
                if k == 1:
                    fake = f"{stem}x.github.io"
                made.append(Company(f"lookalike-{k}", f"{stem} (look-alike)", fake, False))
        return made

    def contact(self, company: Company) -> Contact:
        r = self.rng
        self._people += 1
        pid = f"b{self._people}"
        local = f"{r.choice(PINYIN)}.{self._people}"
        host = company.domain
        if r.random() < 0.2:
            host = f"{r.choice(['sh', 'bj', 'mail', 'corp'])}.{company.domain}"
        title, department = r.choice(TITLES)
        if r.random() < 0.3:  # the same title as people type it
            title = r.choice([title.upper(), f" {title} ", title.replace(" ", "  ")])
        phone = f"139{self._people:08d}"
        return Contact(pid, company, f"{local}@{host}", phone, title, department)

    def event(self, source: str, ids: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
        body = event_body(self.rng, f"b2b-{len(self.events)}", source, ids) | extra
        self.events.append(body)
        return body

    def evidence(self, c: Contact) -> None:
        """A person's events, and which account link they support."""
        r = self.rng
        company = c.company
        self.works_at[c.pid] = company.id
        self.emails[c.pid] = c.email
        # The largest account is the CRM's own: every one of its people is a contact.
        roll = r.random() * (0.8 if company.id == "crm-0" else 1.0)
        if company.account and roll < 0.55:
            email = c.email
            if r.random() < 0.15:  # a CRM contact filed with a private address
                email = f"{c.pid}x@{r.choice(FREE_MAIL)}"
                self.emails[c.pid] = email
            named: dict[str, str] = {"id": company.id}
            pick = r.random()
            if pick < 0.1:
                named = {"domain": company.domain}
            elif pick < 0.15:
                named = {"name": company.name}
            named |= {"title": c.title, "department": c.department}
            self.event("crm", [("email", email), ("phone", c.phone)], account=named)
            self.supported.add((c.pid, company.id))
        elif roll < 0.8:  # CRM saw the corporate email: verified, a domain link if it has one
            self.event("crm", [("email", c.email), ("phone", c.phone)])
            if company.account:
                self.supported.add((c.pid, company.id))
        else:  # a web form only: at most a suggestion
            self.event("web", [("email", c.email), ("cookie_id", f"ck-{c.pid}-b2b")])
        if r.random() < 0.3:  # and browses as well
            self.event("web", [("cookie_id", f"ck-{c.pid}-b2b"), ("phone", c.phone)])

    def consumer(self) -> None:
        """Someone on free mail, seen by the CRM: no account is theirs."""
        self._people += 1
        pid = f"b{self._people}"
        email = f"{self.rng.choice(PINYIN)}{self._people}@{self.rng.choice(FREE_MAIL)}"
        self.event("crm", [("email", email)], traits={"name": self.rng.choice(SURNAMES)})
        self.emails[pid] = email

    def generate(self) -> B2BData:
        r = self.rng
        companies = self.companies()
        people = 0
        for company in companies:
            count = self.largest if company.id == "crm-0" else r.randint(3, 30)
            for _ in range(count):
                self.evidence(self.contact(company))
                people += 1
        for _ in range(people // 5):
            self.consumer()
        r.shuffle(self.events)
        accounts = [
            {
                "id": c.id,
                "name": c.name,
                "domains": [c.domain],
                "industry": c.industry,
                "region": c.region,
                "parentId": c.parent,
            }
            for c in companies
            if c.account
        ]
        return B2BData(
            accounts, self.events, self.works_at, self.supported, self.emails, "crm-0", companies
        )


def generate_b2b(companies: int, seed: int, largest: int = 200) -> B2BData:
    return B2BGenerator(companies, seed, largest).generate()
