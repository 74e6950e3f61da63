"""What changed in an account or a link, as its history tells it."""

from __future__ import annotations

from graph.accounts.models import Account, Link


def described(account: Account) -> dict[str, object]:
    return {
        "name": account.name,
        "domains": list(account.domains),
        "industry": account.industry,
        "sizeBand": account.size_band,
        "region": account.region,
        "parent": account.parent_id,
    }


def differences(before: Account, after: Account) -> dict[str, object]:
    old, new = described(before), described(after)
    return {k: {"from": old[k], "to": v} for k, v in new.items() if old[k] != v}


def link_differences(before: Link | None, after: Link) -> dict[str, object]:
    def described(x: Link | None) -> dict[str, object]:
        if x is None:
            return {"title": None, "department": None, "roles": []}
        return {"title": x.title, "department": x.department, "roles": [r.role for r in x.roles]}

    old, new = described(before), described(after)
    return {k: {"from": old[k], "to": v} for k, v in new.items() if old[k] != v}
