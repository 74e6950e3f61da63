"""GraphiQL served from the service's own files, never from a CDN.

Users run idgraph in closed networks where CDNs are unreachable; a page that
fetches its scripts from the internet would hang at "Loading...". The assets
come from the npm registry at install time (``make install``) and are served
from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = {
    "react.js": "react/umd/react.production.min.js",
    "react-dom.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.js": "graphiql/graphiql.min.js",
    "graphiql.css": "graphiql/graphiql.min.css",
}


def assets_dir() -> Path:
    configured = os.environ.get("IDGRAPH_GRAPHIQL_ASSETS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent / "graphiql" / "node_modules"


def assets_missing(root: Path) -> list[str]:
    return [path for path in ASSETS.values() if not (root / path).is_file()]


class AssetFiles(StaticFiles):
    """Only the four files the page needs, under stable names."""

    def __init__(self, root: Path) -> None:
        super().__init__(directory=root, check_dir=False)

    def get_path(self, scope: dict) -> str:  # type: ignore[override,type-arg]
        name = scope["path"].rsplit("/", 1)[-1]
        return ASSETS.get(name, "\0missing")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>idgraph · GraphiQL</title>
<link rel="stylesheet" href="{prefix}/graphiql.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{prefix}/react.js"></script>
<script src="{prefix}/react-dom.js"></script>
<script src="{prefix}/graphiql.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
  const defaultHeaders = JSON.stringify({{ Authorization: "Bearer PASTE-YOUR-KEY-HERE" }}, null, 2);
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {{
    fetcher,
    defaultHeaders,
    shouldPersistHeaders: true,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: "headers",
    defaultQuery: "# Set your key in the Headers tab below, then run:\\n"
      + "query {{\\n  resolveIdentifiers(identifiers: [{{type: \\"phone\\", "
      + "value: \\"13800138000\\"}}]) {{\\n    status\\n    oneId\\n  }}\\n}}\\n",
  }}));
</script>
</body>
</html>
"""


def graphiql_page(prefix: str) -> Response:
    missing = assets_missing(assets_dir())
    if missing:
        return HTMLResponse(
            "<h1>GraphiQL assets are not installed</h1><p>Run <code>make install</code> "
            "(it installs them from the npm registry) or set IDGRAPH_GRAPHIQL_ASSETS. Missing: "
            + ", ".join(missing)
            + "</p>",
            status_code=503,
        )
    return HTMLResponse(_PAGE.format(prefix=prefix))
