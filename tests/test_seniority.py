"""Seniority from titles, with the shipped rules: both languages, their variants, and assistants."""

from __future__ import annotations

import pytest

from graph.accounts.seniority import Seniority, SeniorityRule, SeniorityRules
from graph.config import load_config
from graph.errors import ConfigError

RULES = load_config().accounts.seniority_rules()

TITLES = [
    # Chinese
    ("董事长", Seniority.CXO),
    ("总裁", Seniority.CXO),
    ("首席执行官", Seniority.CXO),
    ("总经理", Seniority.CXO),
    ("首席技术官", Seniority.CXO),
    ("首席数据官", Seniority.CXO),
    ("联合创始人兼CEO", Seniority.CXO),
    ("华东区总经理", Seniority.CXO),
    ("副总裁", Seniority.VP),
    ("副总经理", Seniority.VP),
    ("销售副总", Seniority.VP),
    ("助理总裁", Seniority.VP),
    ("市场总监", Seniority.DIRECTOR),
    ("IT部部长", Seniority.DIRECTOR),
    ("采购经理", Seniority.MANAGER),
    ("销售主管", Seniority.MANAGER),
    ("项目组长", Seniority.MANAGER),
    ("总经理助理", Seniority.STAFF),
    ("董事长秘书", Seniority.STAFF),
    ("总裁助理", Seniority.STAFF),
    ("CEO助理", Seniority.STAFF),
    ("软件工程师", Seniority.STAFF),
    ("销售代表", Seniority.STAFF),
    # English
    ("CEO", Seniority.CXO),
    ("Chief Executive Officer", Seniority.CXO),
    ("Chief Information Security Officer", Seniority.CXO),
    ("CFO & COO", Seniority.CXO),
    ("Co-Founder", Seniority.CXO),
    ("President", Seniority.CXO),
    ("General Manager, South China", Seniority.CXO),
    ("Managing Director", Seniority.CXO),
    ("Vice President of Engineering", Seniority.VP),
    ("VP, Sales", Seniority.VP),
    ("SVP Marketing", Seniority.VP),
    ("Executive Vice President", Seniority.VP),
    ("Director of Procurement", Seniority.DIRECTOR),
    ("Head of Data", Seniority.DIRECTOR),
    ("Sr. Manager, IT", Seniority.MANAGER),
    ("Engineering Manager", Seniority.MANAGER),
    ("Team Lead", Seniority.MANAGER),
    ("Tech Lead", Seniority.MANAGER),
    ("Assistant to the CEO", Seniority.STAFF),
    ("Executive Assistant to the VP of Sales", Seniority.STAFF),
    ("CEO Assistant", Seniority.STAFF),
    ("Software Engineer", Seniority.STAFF),
    ("MVP Program Coordinator", Seniority.STAFF),  # "vp" inside a word is no VP
    ("Product Owner", Seniority.STAFF),
    ("Chief of Staff", Seniority.STAFF),
    # spacing, case and full width
    ("  vice   president ", Seniority.VP),
    ("ceo", Seniority.CXO),
    ("ＣＥＯ", Seniority.CXO),
    ("ｖｐ　ｏｆ　ｓａｌｅｓ", Seniority.VP),
    ("销售VP", Seniority.VP),
    ("总经理 助理", Seniority.STAFF),
    ("副 总经理", Seniority.VP),
    ("HEAD OF MARKETING", Seniority.DIRECTOR),
    ("Ｄｉｒｅｃｔｏｒ", Seniority.DIRECTOR),
    # no title
    ("", Seniority.UNKNOWN),
    ("   ", Seniority.UNKNOWN),
    (None, Seniority.UNKNOWN),
]


@pytest.mark.parametrize(("title", "level"), TITLES)
def test_title_seniority(title: str | None, level: Seniority) -> None:
    assert RULES.level(title) is level


def test_the_table_covers_both_languages() -> None:
    chinese = [t for t, _ in TITLES if t and any("\u4e00" <= c <= "\u9fff" for c in t)]
    english = [t for t, _ in TITLES if t and t.isascii()]
    assert len(chinese) >= 20 and len(english) >= 20


def test_rules_come_from_config_in_their_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "idgraph.toml"
    config.write_text(
        '[[accounts.seniority]]\nlevel = "DIRECTOR"\nterms = ["principal"]\n'
        '[[accounts.seniority]]\nlevel = "MANAGER"\npatterns = ["^owner"]\n',
        encoding="utf-8",
    )
    rules = load_config(config).accounts.seniority_rules()
    assert rules.level("Principal Engineer") is Seniority.DIRECTOR
    assert rules.level("Owner, product") is Seniority.MANAGER
    assert rules.level("CEO") is Seniority.STAFF  # the user's rules replace the shipped ones


@pytest.mark.parametrize(
    "table",
    [
        '[[accounts.seniority]]\nlevel = "BOSS"\nterms = ["x"]\n',
        '[[accounts.seniority]]\nlevel = "VP"\n',
        '[[accounts.seniority]]\nlevel = "VP"\npatterns = ["(unclosed"]\n',
        '[[accounts.seniority]]\nlevel = "VP"\nterms = [" , "]\n',
    ],
)
def test_a_bad_rule_fails_at_load(tmp_path, table: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "idgraph.toml"
    config.write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"accounts\.seniority"):
        load_config(config)


def test_a_rule_needs_something_to_match() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SeniorityRules([SeniorityRule(Seniority.VP)])
