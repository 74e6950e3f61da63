"""Decision units and buying-group templates, on the pure core (stores come in their own tests)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graph.accounts.buying_groups import RoleRule, RoleSpec, Template, template_from
from graph.accounts.decision_unit import Contact, HeldRole, decision_unit
from graph.accounts.seniority import Seniority
from graph.config import load_config
from graph.errors import BadUserInput, ConfigError, NotFound, UnknownRole

CONFIG = load_config().accounts
TEMPLATES = CONFIG.buying_groups()
LEVEL = CONFIG.seniority_rules().level
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def contact(one_id: str, title: str, department: str = "", *roles: str) -> Contact:
    held = tuple(HeldRole(r, "MANUAL", T0.replace(day=1 + i)) for i, r in enumerate(roles))
    return Contact(one_id, title, department, LEVEL(title), held)


def test_the_default_template_is_as_documented() -> None:
    default = TEMPLATES.get(None)
    assert default.id == "default"
    assert [(r.role, r.required, r.weight) for r in default.roles] == [
        ("DECISION_MAKER", 1, 3),
        ("ECONOMIC_BUYER", 1, 3),
        ("CHAMPION", 1, 2),
        ("INFLUENCER", 2, 1),
        ("USER", 1, 1),
        ("GATEKEEPER", 0, 0.5),
        ("BLOCKER", 0, 0),
    ]


def test_completeness_missing_roles_and_weights() -> None:
    contacts = [
        contact("o-ceo", "CEO", "", "DECISION_MAKER"),
        contact("o-eng", "Software Engineer", "IT", "INFLUENCER"),
        contact("o-dir", "IT Director", "IT", "CHAMPION", "INFLUENCER"),
    ]
    unit = decision_unit(TEMPLATES.get("default"), contacts, set())
    by_role = {r.role: r for r in unit.roles}
    assert by_role["DECISION_MAKER"].completeness == 1.0
    assert [m.one_id for m in by_role["INFLUENCER"].members] == ["o-eng", "o-dir"]
    assert by_role["INFLUENCER"].completeness == 1.0
    assert by_role["ECONOMIC_BUYER"].completeness == 0.0
    assert by_role["USER"].completeness == 0.0
    assert by_role["GATEKEEPER"].completeness == 1.0  # nobody required: complete
    assert unit.missing_roles == ("ECONOMIC_BUYER", "USER")
    # weighted over roles with weight > 0: (3*1 + 3*0 + 2*1 + 1*1 + 1*0 + 0.5*1) / 10.5
    assert unit.completeness == pytest.approx(6.5 / 10.5)


def test_partial_roles_count_their_share() -> None:
    unit = decision_unit(TEMPLATES.get(None), [contact("o1", "Architect", "", "INFLUENCER")], set())
    assert {r.role: r.completeness for r in unit.roles}["INFLUENCER"] == 0.5


def test_suggestions_best_first_and_never_for_held_or_dismissed_roles() -> None:
    contacts = [
        contact("o-cfo", "CFO", "Finance"),
        contact("o-ceo", "总经理", "", "DECISION_MAKER"),
        contact("o-asst", "总经理助理", "总经办"),
    ]
    unit = decision_unit(TEMPLATES.get(None), contacts, {("o-cfo", "DECISION_MAKER")})
    pairs = [(s.one_id, s.role) for s in unit.suggestions]
    assert pairs[0] == ("o-cfo", "ECONOMIC_BUYER")
    assert ("o-cfo", "DECISION_MAKER") not in pairs  # dismissed
    assert ("o-ceo", "DECISION_MAKER") not in pairs  # held
    assert ("o-asst", "GATEKEEPER") in pairs
    assert ("o-asst", "DECISION_MAKER") not in pairs  # an assistant is not the boss
    confidences = [s.confidence for s in unit.suggestions]
    assert confidences == sorted(confidences, reverse=True)
    first = unit.suggestions[0]
    assert "cfo" in first.reason


def test_one_person_may_hold_several_roles() -> None:
    unit = decision_unit(
        TEMPLATES.get(None), [contact("o1", "CTO", "", "DECISION_MAKER", "CHAMPION")], set()
    )
    holders = {r.role: [m.one_id for m in r.members] for r in unit.roles}
    assert holders["DECISION_MAKER"] == holders["CHAMPION"] == ["o1"]


def test_custom_templates_and_roles() -> None:
    template = template_from(
        {
            "id": "security-deal",
            "roles": [
                {
                    "role": "CISO",
                    "required": 1,
                    "weight": 2,
                    "rules": [{"title_keywords": ["ciso", "信息安全"], "confidence": 0.9}],
                },
                {"role": "AUDITOR", "required": 2, "weight": 1},
            ],
        }
    )
    templates = TEMPLATES.with_template(template)
    assert templates.check_roles(["CISO", "DECISION_MAKER", "CISO"]) == ["CISO", "DECISION_MAKER"]
    unit = decision_unit(templates.get("security-deal"), [contact("o1", "CISO")], set())
    assert unit.missing_roles == ("CISO", "AUDITOR")
    assert unit.completeness == 0.0
    assert [(s.one_id, s.role, s.confidence) for s in unit.suggestions] == [("o1", "CISO", 0.9)]


def test_unknown_roles_and_templates_are_typed_errors() -> None:
    with pytest.raises(UnknownRole) as caught:
        TEMPLATES.check_roles(["DECISION_MAKER", "DECISON_MAKER"])
    assert caught.value.code == "UNKNOWN_ROLE"
    with pytest.raises(NotFound):
        TEMPLATES.get("nope")


@pytest.mark.parametrize(
    "make",
    [
        lambda: RoleSpec("decision maker", 1, 1),
        lambda: RoleSpec("X", -1, 1),
        lambda: RoleRule(1.5, frozenset({Seniority.CXO})),
        lambda: RoleRule(0.5),
        lambda: Template("t", "t", ()),
        lambda: Template("t", "t", (RoleSpec("X", 1, 1), RoleSpec("X", 1, 1))),
        lambda: Template("bad id!", "t", (RoleSpec("X", 1, 1),)),
    ],
)
def test_a_malformed_template_is_bad_input(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadUserInput):
        make()


def test_templates_in_config_are_checked_at_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "idgraph.toml"
    config.write_text(
        '[[accounts.templates]]\nid = "small"\n'
        'roles = [{role = "BUYER", required = 1, weight = 1}]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="default"):
        load_config(config)
    config.write_text(
        '[[accounts.templates]]\nid = "default"\n'
        'roles = [{role = "buyer", required = 1, weight = 1}]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="UPPER_SNAKE_CASE"):
        load_config(config)
