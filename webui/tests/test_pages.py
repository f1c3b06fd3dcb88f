"""The browser client's page and files are served by Django itself, with no CDN."""

import re
from pathlib import Path

from django.test import Client

STATIC = Path(__file__).resolve().parents[1] / "static" / "webui"
RELATIVE_IMPORT = re.compile(r"""(?:from|import)\s+["']\./([\w.-]+\.js)["']""")


def test_the_root_url_serves_the_chat_client_to_anyone(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<form id="login-form"' in page
    assert '<script type="module" src="/static/webui/app.js">' in page


def test_the_page_loads_nothing_from_another_origin(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.content.decode())


def static_file(name):
    # WhiteNoise answers before Django's URL routing, under any server; Client goes
    # through the same middleware stack as daphne, uvicorn and granian.
    response = Client().get(f"/static/webui/{name}")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body.decode()


def test_the_stylesheet_is_served_without_collectstatic():
    response, body = static_file("chat.css")
    assert response.status_code == 200
    assert len(body) > 1000


def test_every_module_the_client_imports_is_served_as_javascript():
    # A browser refuses a module script served with a non-JavaScript type, and one module
    # that fails to load stops the whole client.
    served, pending = set(), ["app.js"]
    while pending:
        name = pending.pop()
        if name in served:
            continue
        response, body = static_file(name)
        assert response.status_code == 200, name
        assert response["Content-Type"].split(";")[0] in {"text/javascript", "application/javascript"}, name
        assert body.strip(), name
        served.add(name)
        pending.extend(RELATIVE_IMPORT.findall(body))
    # No module is left on disk that the page never loads.
    assert served == {path.name for path in STATIC.glob("*.js")}


def test_a_post_to_the_root_url_is_a_json_405_and_changes_nothing(client):
    response = client.post("/", {"x": 1})
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"


def test_a_missing_static_file_is_a_json_404(client):
    response = client.get("/static/webui/nothing-here.js")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
