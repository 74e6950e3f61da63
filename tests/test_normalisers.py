"""Every normaliser against the formats real channels send, through resolveIdentifiers."""

from __future__ import annotations

import pytest

from tests.conftest import RESOLVE, Api


def normalise(api: Api, type_: str, value: str) -> tuple[str | None, str]:
    found = api(RESOLVE, {"ids": [{"type": type_, "value": value}]})["resolveIdentifiers"][0]
    return found["normalized"], found["status"]


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138 0013 8000",
        "86-13800138000",
        "8613800138000",
        "008613800138000",
        "0086 138 0013 8000",
        "138-0013-8000",
        "(138) 0013 8000",
        "１３８００１３８０００",
        "＋８６ １３８ ００１３ ８０００",
        " 138 0013 8000 ",
        "+86-138-0013-8000",
    ],
)
def test_phone_formats_become_one_node(api: Api, raw: str) -> None:
    assert normalise(api, "phone", raw) == ("+8613800138000", "UNKNOWN")


MOBILE_SPELLINGS = ["{n}", "86{n}", "+86 {n}", "0086-{n}", "17951{n}", "(+86) {n}"]
LANDLINE_SPELLINGS = ["010{n}", "10{n}", "8610{n}", "+86 10 {n}", "0086 10 {n}"]


@pytest.mark.parametrize("first", range(len(MOBILE_SPELLINGS)))
def test_a_phone_reads_the_same_whichever_spelling_came_first(api: Api, first: int) -> None:
    # A fresh number per order, so that each spelling is once the first one read.
    mobile = f"1391234{5600 + first}"
    spellings = MOBILE_SPELLINGS[first:] + MOBILE_SPELLINGS[:first]
    for spelling in spellings:
        assert normalise(api, "phone", spelling.format(n=mobile)) == (f"+86{mobile}", "UNKNOWN")
    landline = f"6234{5600 + first}"
    turn = first % len(LANDLINE_SPELLINGS)
    spellings = LANDLINE_SPELLINGS[turn:] + LANDLINE_SPELLINGS[:turn]
    for spelling in spellings:
        assert normalise(api, "phone", spelling.format(n=landline)) == (
            f"+8610{landline}",
            "UNKNOWN",
        )


def test_foreign_phone_keeps_its_country(api: Api) -> None:
    assert normalise(api, "phone", "+1 (650) 253-0000") == ("+16502530000", "UNKNOWN")
    assert normalise(api, "phone", "+44 20 7946 0958")[0] == "+442079460958"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "1380013800", "+86 999", ""])
def test_invalid_phones_are_invalid(api: Api, raw: str) -> None:
    assert normalise(api, "phone", raw) == (None, "INVALID")


def test_phone_default_region_is_configurable(make_api: object) -> None:
    api = make_api('[phone]\ndefault_region = "US"\n')  # type: ignore[operator]
    assert normalise(api, "phone", "(650) 253-0000") == ("+16502530000", "UNKNOWN")


@pytest.mark.parametrize(
    "raw",
    [
        "Wang.Fang@Example.COM",
        "  wang.fang@example.com ",
        "WANG.FANG@EXAMPLE.COM",
        "mailto:wang.fang@example.com",
        "ｗａｎｇ.ｆａｎｇ＠ｅｘａｍｐｌｅ.ｃｏｍ",
    ],
)
def test_email_case_spaces_and_width(api: Api, raw: str) -> None:
    assert normalise(api, "email", raw) == ("wang.fang@example.com", "UNKNOWN")


@pytest.mark.parametrize("raw", ["no-at-sign", "two@@example.com", "a@b", "x y@example.com"])
def test_invalid_emails(api: Api, raw: str) -> None:
    assert normalise(api, "email", raw)[1] == "INVALID"


def test_device_ids_are_case_insensitive(api: Api) -> None:
    upper = normalise(api, "device_id", "AEBE52E7-03EE-455A-B3C4-E57283966239")
    lower = normalise(api, "device_id", " aebe52e7-03ee-455a-b3c4-e57283966239")
    assert upper == lower == ("aebe52e7-03ee-455a-b3c4-e57283966239", "UNKNOWN")


def test_wechat_ids_keep_their_case(api: Api) -> None:
    assert normalise(api, "wechat_openid", " oAbC123xyz_-9 ") == ("oAbC123xyz_-9", "UNKNOWN")
    assert normalise(api, "wechat_unionid", "oXyZ987654") == ("oXyZ987654", "UNKNOWN")
    assert normalise(api, "wechat_openid", "has space inside")[1] == "INVALID"


def test_crm_member_and_cookie_ids_are_trimmed(api: Api) -> None:
    assert normalise(api, "crm_id", " CRM-001 ") == ("CRM-001", "UNKNOWN")
    assert normalise(api, "member_id", "M0012345") == ("M0012345", "UNKNOWN")
    assert normalise(api, "cookie_id", " GA1.2.345678.901234 ") == (
        "GA1.2.345678.901234",
        "UNKNOWN",
    )


@pytest.mark.parametrize(
    ("type_", "raw"),
    [
        ("email", "test@test.com"),
        ("email", " TEST@TEST.COM "),
        ("phone", "13800000000"),
        ("phone", "+86 138 0000 0000"),
        ("device_id", "00000000-0000-0000-0000-000000000000"),
        ("device_id", "unknown"),
        ("cookie_id", "null"),
        ("member_id", "NULL"),
        ("crm_id", "0"),
        ("cookie_id", "undefined"),
        ("device_id", "ffffffffffff"),
        ("wechat_openid", "xxxxxxxx"),
    ],
)
def test_placeholders_are_blocked(api: Api, type_: str, raw: str) -> None:
    assert normalise(api, type_, raw)[1] == "BLOCKED"


def test_custom_type_and_blocked_value_from_config(make_api: object) -> None:
    api = make_api(  # type: ignore[operator]
        '[types.alipay_uid]\nnormaliser = "trim"\npattern = "^2088\\\\d{12}$"\n'
        'priority = 60\nstrong = true\nblocked = ["2088000000000001"]\n'
    )
    assert normalise(api, "alipay_uid", " 2088123456789012 ") == ("2088123456789012", "UNKNOWN")
    assert normalise(api, "alipay_uid", "2088000000000001")[1] == "BLOCKED"
    assert normalise(api, "alipay_uid", "1234")[1] == "INVALID"
