"""Email-domain matching: registrable domains from the Public Suffix List, no false links."""

from __future__ import annotations

import pytest

from graph.accounts.domains import Strength, account_domain
from graph.config import load_config
from graph.errors import BadUserInput

MATCHER = load_config().accounts.domain_matcher()

# account id -> the domains it was given with (in any form a person may type)
ACCOUNTS = {
    "acme": ["acme.com", "ACME.com.cn"],
    "acme-uk": ["www.acme.co.uk"],
    "notacme": ["notacme.com"],
    "acme-ar": ["acme.com.ar"],
    "globex": ["globex.cn", "globex.com.hk"],
    "initech": ["initech.github.io"],
    "hooli": ["hooli.herokuapp.com"],
    "muller": ["müller.de"],
    "example-cn": ["例子.中国"],
    "umbrella": ["umbrella.net.cn"],
    "stark": ["stark.co.jp"],
    "wayne": ["wayne.com.au"],
    "tyrell": ["tyrell.org.uk"],
    "cyberdyne": ["cyberdyne.gov.cn"],
    "soylent": ["soylent.io"],
}
DOMAINS: dict[str, list[str]] = {}
for account, given in ACCOUNTS.items():
    for text in given:
        DOMAINS.setdefault(account_domain(text), []).append(account)

EMAILS = [
    # (email, the accounts it must match; empty: none)
    ("li@acme.com", {"acme"}),
    ("li@sh.acme.com.cn", {"acme"}),
    ("LI@Mail.ACME.COM", {"acme"}),
    ("bob@notacme.com", {"notacme"}),
    ("bob@acme.com.ar", {"acme-ar"}),
    ("bob@acme.com.evil.io", set()),
    ("bob@acme.com.cn.evil.io", set()),
    ("bob@evilacme.com", set()),
    ("bob@acme-corp.com", set()),
    ("bob@acme.co", set()),
    ("bob@acme.cn", set()),
    ("bob@acmе.com", set()),  # Cyrillic е: another domain altogether
    ("jo@acme.co.uk", {"acme-uk"}),
    ("jo@london.acme.co.uk", {"acme-uk"}),
    ("jo@co.uk", set()),
    ("wang@globex.cn", {"globex"}),
    ("wang@hk.globex.com.hk", {"globex"}),
    ("wang@globex.com", set()),
    ("dev@initech.github.io", {"initech"}),
    ("dev@other.github.io", set()),
    ("dev@github.io", set()),
    ("ops@hooli.herokuapp.com", {"hooli"}),
    ("ops@nothooli.herokuapp.com", set()),
    ("hans@müller.de", {"muller"}),
    ("hans@xn--mller-kva.de", {"muller"}),
    ("hans@mueller.de", set()),
    ("zhang@例子.中国", {"example-cn"}),
    ("zhang@xn--fsqu00a.xn--fiqs8s", {"example-cn"}),
    ("zhang@例子.cn", set()),
    ("a@umbrella.net.cn", {"umbrella"}),
    ("a@umbrella.com.cn", set()),
    ("t@stark.co.jp", {"stark"}),
    ("t@stark.jp", set()),
    ("b@wayne.com.au", {"wayne"}),
    ("r@tyrell.org.uk", {"tyrell"}),
    ("r@tyrell.co.uk", set()),
    ("s@cyberdyne.gov.cn", {"cyberdyne"}),
    ("s@soylent.io", {"soylent"}),
    ("s@soylent.io.evil.com", set()),
    # free mail never matches, whoever uses it
    ("li@qq.com", set()),
    ("li@vip.qq.com", set()),
    ("li@foxmail.com", set()),
    ("li@163.com", set()),
    ("li@126.com", set()),
    ("li@yeah.net", set()),
    ("li@sina.com", set()),
    ("li@139.com", set()),
    ("li@aliyun.com", set()),
    ("li@gmail.com", set()),
    ("li@outlook.com", set()),
    ("li@hotmail.com", set()),
    ("li@yahoo.com", set()),
    ("li@icloud.com", set()),
    # not emails at all
    ("acme.com", set()),
    ("@acme.com", set()),
    ("li@", set()),
    ("li@acme", set()),
]


def test_the_fixture_is_broad() -> None:
    hosts = {e.rpartition("@")[2].lower() for e, _ in EMAILS}
    assert len(DOMAINS) >= 15 and len(hosts) >= 30


@pytest.mark.parametrize(("email", "accounts"), EMAILS)
def test_an_email_matches_exactly_its_registrable_domain(email: str, accounts: set[str]) -> None:
    found = MATCHER.matches(email, ["crm"], DOMAINS)
    assert {m.account_id for m in found} == accounts


def test_no_false_links_over_the_whole_fixture() -> None:
    false = [
        (email, m.account_id)
        for email, accounts in EMAILS
        for m in MATCHER.matches(email, ["crm", "web_form"], DOMAINS)
        if m.account_id not in accounts
    ]
    assert false == []


def test_strength_follows_the_sources_that_saw_the_email() -> None:
    (strong,) = MATCHER.matches("li@acme.com", ["web_form", "crm"], DOMAINS)
    assert strong.strength is Strength.STRONG
    assert "verified by crm" in strong.reason
    (weak,) = MATCHER.matches("li@acme.com", ["web_form"], DOMAINS)
    assert weak.strength is Strength.WEAK
    assert "web_form" in weak.reason and "acme.com" in weak.reason


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("acme.com", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("ACME.COM.", "acme.com"),
        ("sh.acme.com.cn", "acme.com.cn"),
        ("ａｃｍｅ．ｃｏｍ", "acme.com"),
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ("initech.github.io", "initech.github.io"),
    ],
)
def test_an_account_domain_is_kept_registrable_and_ascii(given: str, kept: str) -> None:
    assert account_domain(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        *("", " ", "acme", "com", "com.cn", "co.uk", "github.io", "https://acme.com"),
        *("li@acme.com", "acme.com/about", "a b.com", "acme..com", "-acme.com", "acme_corp.com"),
        *("10.0.0.1", "acme.com:443"),
    ],
)
def test_what_is_not_a_company_domain_is_refused(given: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        account_domain(given)
    assert caught.value.code == "BAD_USER_INPUT"


def test_free_mail_comes_from_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "idgraph.toml"
    config.write_text('[accounts]\nfree_mail = ["acme.com"]\n', encoding="utf-8")
    matcher = load_config(config).accounts.domain_matcher()
    assert matcher.matches("li@acme.com", ["crm"], DOMAINS) == []
    assert matcher.matches("li@qq.com", ["crm"], {"qq.com": ["tencent"]})[0].account_id == "tencent"
