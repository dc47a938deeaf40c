"""``/docs`` and ``/redoc`` load nothing from outside the API, so they work offline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from api.app import create_app
from core.settings import Environment, Settings
from tests.support.problems import assert_problem

EXPECTED_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class _LinkedUrls(HTMLParser):
    """Every URL a browser fetches while loading the page: scripts, styles, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _linked_urls(html: str) -> list[str]:
    parser = _LinkedUrls()
    parser.feed(html)
    return parser.urls


async def _client(root_path: str = "") -> httpx.AsyncClient:
    # The pages need neither the database nor Temporal: no lifespan, nothing connects.
    settings = Settings(
        environment=Environment.TEST,
        jwt_secret=SecretStr("docs-tests-never-verify-a-token-0000000000"),
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/unused",
    )
    app = create_app(settings, temporal=await Client.connect("127.0.0.1:1", lazy=True))
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with await _client() as client:
        yield client


@pytest.mark.parametrize(
    ("page", "script_marker"), [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")]
)
async def test_page_assets_are_local_and_each_is_served(
    http: httpx.AsyncClient, page: str, script_marker: str
) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text, "nothing may come from another host"
    assert "https://" not in response.text, "nothing may come from another host"
    urls = _linked_urls(response.text)
    assert any(url.endswith(".js") for url in urls), urls

    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert url.startswith("/"), url
        asset = await http.get(url)
        assert asset.status_code == 200, url
        suffix = parts.path[parts.path.rfind(".") :]
        assert asset.headers["content-type"].startswith(EXPECTED_TYPES[suffix]), url
        assert asset.content, url
        if suffix == ".js":
            assert script_marker in asset.text

    spec = await http.get("/openapi.json")
    assert spec.status_code == 200
    assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text


async def test_swagger_ui_does_not_call_the_online_validator(http: httpx.AsyncClient) -> None:
    page = (await http.get("/docs")).text
    assert '"validatorUrl": null' in page


async def test_oauth2_redirect_page_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "oauth2" in response.text


async def test_an_unknown_asset_is_a_problem(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/docs/assets/..%2Fcore.py"), 404)
    assert_problem(await http.get("/docs/assets/core.py"), 404)


async def test_links_carry_the_root_path_behind_a_proxy() -> None:
    async with await _client(root_path="/booking") as http:
        page = (await http.get("/docs")).text
    urls = _linked_urls(page)
    assert urls
    assert all(url.startswith("/booking/docs/assets/") for url in urls), urls
    assert "'/booking/openapi.json'" in page
