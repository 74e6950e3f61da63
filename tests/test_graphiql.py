"""GraphiQL is served from the service itself and works with no internet access."""

from __future__ import annotations

import re

from tests.conftest import Api


def test_graphiql_page_loads_without_a_key_and_uses_only_local_assets(api: Api) -> None:
    page = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html), "page must not load from a CDN"
    assets = re.findall(r"(?:src|href)=\"(/[^\"]+)\"", html)
    assert len(assets) == 4
    for path in assets:
        response = api.client.get(path)
        assert response.status_code == 200, path
        assert len(response.content) > 1000
        assert b"unpkg.com" not in response.content[:2000]
    assert "Authorization" in html  # the header editor starts with a place for the key


def test_unknown_asset_is_404(api: Api) -> None:
    assert api.client.get("/graphiql-assets/../../pyproject.toml").status_code == 404
    assert api.client.get("/graphiql-assets/other.js").status_code == 404


def test_root_sends_browsers_to_graphiql(api: Api) -> None:
    response = api.client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307) and response.headers["location"] == "/graphql"
