"""The browser client's page and files are served by Django itself, with no CDN."""

import re

import pytest
from django.test import Client


def test_the_root_url_serves_the_chat_client_to_anyone(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<form id="login-form"' in page
    assert "/static/webui/app.js" in page


def test_the_page_loads_nothing_from_another_origin(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.content.decode())


@pytest.mark.parametrize("name", ["app.js", "stomp.js", "chat.css"])
def test_the_clients_files_are_served_without_collectstatic(name):
    # WhiteNoise answers before Django's URL routing, under any server; Client goes
    # through the same middleware stack as daphne, uvicorn and gunicorn.
    response = Client().get(f"/static/webui/{name}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert len(body) > 1000


def test_a_post_to_the_root_url_is_a_json_405_and_changes_nothing(client):
    response = client.post("/", {"x": 1})
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"


def test_a_missing_static_file_is_a_json_404(client):
    response = client.get("/static/webui/nothing-here.js")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
