"""One route table: the server, its OpenAPI document and the client agree on every route."""

from __future__ import annotations

import ast
from pathlib import Path

from streamkit.protocol import routes
from streamkit.protocol.routes import ROUTES, Route
from streamkit.server import dashboard, openapi
from streamkit.server.app import create_app
from streamkit.server.store.sqlite.store import SqliteStore

API_MODULE = Path(__file__).resolve().parents[2] / "streamkit" / "_http" / "api.py"

NOT_FOR_THE_CLIENT = {
    routes.HEALTH,  # for load balancers
    routes.METRICS,  # for Prometheus
    routes.OPENAPI,  # for tools
    routes.RECEIVE_GET,  # Sequin's GET twin of receive; the client posts
    routes.DASHBOARD,  # for the dashboard page (/ui/), which polls it from the browser
}


def _table() -> set[tuple[str, str]]:
    return {(route.method.lower(), route.path) for route in ROUTES}


def test_names_are_unique() -> None:
    assert len({route.name for route in ROUTES}) == len(ROUTES)
    assert len(_table()) == len(ROUTES)


def test_the_app_serves_exactly_the_table(tmp_path: Path) -> None:
    app = create_app(SqliteStore(tmp_path / "db.sqlite"))
    # Beside the table: the dashboard's page routes (its static files are not listed).
    assert openapi.registered(app.router) == _table() | dashboard.PAGES


def test_the_document_describes_exactly_the_table() -> None:
    assert {op.route for op in openapi.OPERATIONS} == set(ROUTES)
    assert len(openapi.OPERATIONS) == len(ROUTES)


def test_the_client_calls_every_route_meant_for_it() -> None:
    used = {
        getattr(routes, node.attr)
        for node in ast.walk(ast.parse(API_MODULE.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "routes"
    }
    assert all(isinstance(route, Route) for route in used)
    assert used == set(ROUTES) - NOT_FOR_THE_CLIENT


def test_urls_quote_each_segment() -> None:
    url = routes.ACK.url(stream="a/b", consumer="c d")
    assert url == "/api/streams/a%2Fb/consumers/c%20d/ack"
