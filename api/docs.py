"""``/docs`` (Swagger UI) and ``/redoc`` that work without internet access.

FastAPI's own pages load their scripts, styles and favicon from a CDN (and ReDoc its
fonts from Google), so they stay blank on a machine that is offline, while the stack
promises to need nothing but Python. The same pages are rendered here with FastAPI's
``get_swagger_ui_html`` / ``get_redoc_html``, pointing at copies of those assets that
the ``fastapi-offline`` wheel ships; this module serves them itself.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import NotFound

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"

ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
"""Every file served under ``ASSETS_URL``, with its content type; nothing else is."""

SWAGGER_UI_PARAMETERS = {
    # Swagger UI sends the document to validator.swagger.io for a badge by default.
    "validatorUrl": None,
}


def assets_dir() -> Path:
    """Where the installed ``fastapi-offline`` package keeps the assets."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def install_docs(app: FastAPI) -> None:
    """Add the documentation pages and their assets; create the app with
    ``docs_url=None, redoc_url=None`` so FastAPI does not add its CDN-based ones."""
    directory = assets_dir()
    missing = [name for name in ASSET_TYPES if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"documentation assets missing in {directory}: {', '.join(missing)}")
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or f"{DOCS_URL}/oauth2-redirect"

    def under_root(request: Request, path: str) -> str:
        # Behind a proxy that mounts the API under a prefix, links must carry it.
        return str(request.scope.get("root_path", "")).rstrip("/") + path

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=under_root(request, openapi_url),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=under_root(request, f"{ASSETS_URL}/swagger-ui-bundle.js"),
            swagger_css_url=under_root(request, f"{ASSETS_URL}/swagger-ui.css"),
            swagger_favicon_url=under_root(request, f"{ASSETS_URL}/favicon.png"),
            oauth2_redirect_url=under_root(request, oauth2_redirect_url),
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=under_root(request, openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=under_root(request, f"{ASSETS_URL}/redoc.standalone.js"),
            redoc_favicon_url=under_root(request, f"{ASSETS_URL}/favicon.png"),
            with_google_fonts=False,
        )

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        # A fixed list, so no path from the URL ever reaches the file system.
        media_type = ASSET_TYPES.get(name)
        if media_type is None:
            raise NotFound(f"No documentation asset {name!r}.")
        return FileResponse(
            directory / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )
