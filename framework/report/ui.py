"""``python -m framework ui``: the report's pages, live from the registry, over HTTP.

A small read-only Starlette app; every page is a URL, so a link can be shared on the machine:

- ``/``: every model and the latest sweep;
- ``/models/NAME``: a model's versions, alias history and monitor runs;
- ``/models/NAME/compare?v=3,7``: versions side by side;
- ``/sweeps/ID`` (``/sweeps/latest``): a sweep's trials;
- ``/assets/vega-<version>.js``: the charting bundle, served once and cached by the browser.

Only ``GET`` (and ``HEAD``) exist. An unknown model, version or sweep is a 404 page naming it,
a malformed query a 400, never a 500. There is no login, so the app binds to 127.0.0.1 by
default, answers only requests whose ``Host`` is the address it serves (so a web page elsewhere
cannot read the registry through DNS rebinding), and sends a Content-Security-Policy that lets a
page load nothing from anywhere but this server.
"""

from __future__ import annotations

import hashlib
import html
import logging
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError, NotFound, UsageError, UserError

log = logging.getLogger("framework.ui")

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline' "
                               "'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _error_page(status: int, message: str, base: str = "/") -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status}"
            f"</title></head><body style=\"font:15px system-ui;margin:40px\"><h1>{status}</h1>"
            f"<p>{html.escape(message)}</p><p><a href=\"{base}\">the registry</a></p>"
            "</body></html>\n")


def create_app(registry_root: Path, project: Path, *, allowed_hosts: list[str] | None = None
               ) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from framework.registry import open_registry
    from framework.report import pages
    from framework.report.cli import parse_versions
    from framework.report.vega import Page, bundle
    from framework.sweep.store import open_sweep

    script = bundle().encode()
    asset = f"/assets/vega-{hashlib.sha256(script).hexdigest()[:12]}.js"
    links = pages.Links("/")

    def page(title: str) -> Page:
        return Page(title, bundle_src=asset)

    def answer(build: Any) -> Response:
        try:
            text = build()
        except FrameworkError as exc:
            status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, UserError) \
                else 500
            if status == 500:
                log.error("ui: %s", exc)
            return HTMLResponse(_error_page(status, str(exc).splitlines()[0]), status,
                                headers=HEADERS)
        except Exception:  # a bug must not take the page down with a traceback
            log.exception("ui: page failed")
            return HTMLResponse(_error_page(500, "this page failed; see the ui's log"), 500,
                                headers=HEADERS)
        return HTMLResponse(text, headers=HEADERS)

    def index(request: Request) -> Response:
        def build() -> str:
            with open_registry(registry_root, create=False) as reg:
                try:
                    store = open_sweep(project)
                except UsageError:
                    store = None
                return pages.index_page(reg, store, links, page("registry")).render()
        return answer(build)

    def model(request: Request) -> Response:
        name = request.path_params["name"]

        def build() -> str:
            with open_registry(registry_root, create=False) as reg:
                reg.versions(name)
                return pages.model_page(reg, name, links, page(f"{name}: versions")).render()
        return answer(build)

    def compare(request: Request) -> Response:
        name = request.path_params["name"]

        def build() -> str:
            raw = request.query_params.get("v", "")
            numbers = parse_versions([v for v in raw.split(",") if v.strip()], what="v")
            if len(numbers) < 2:
                raise UsageError("v must be two or more versions, e.g. ?v=3,7")
            if len(numbers) > 10:
                raise UsageError("v must be at most 10 versions")
            with open_registry(registry_root, create=False) as reg:
                reg.versions(name)
                return pages.compare_page(reg, name, numbers, links,
                                          page(f"{name}: compare")).render()
        return answer(build)

    def sweep(request: Request) -> Response:
        sweep_id = request.path_params["sweep_id"]

        def build() -> str:
            try:
                store = open_sweep(project, None if sweep_id == "latest" else sweep_id)
            except UsageError as exc:
                raise NotFound(str(exc)) from None
            return pages.sweep_page(store, links, page=page(f"sweep {store.sweep_id}")).render()
        return answer(build)

    def assets(request: Request) -> Response:
        if request.url.path != asset:
            return HTMLResponse(_error_page(404, "no such file"), 404, headers=HEADERS)
        return Response(script, media_type="text/javascript", headers={
            **HEADERS, "Cache-Control": "public, max-age=31536000, immutable"})

    def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse(_error_page(404, f"no page {request.url.path}"), 404,
                            headers=HEADERS)

    def not_allowed(request: Request, exc: Exception) -> Response:
        return HTMLResponse(_error_page(405, "read-only: GET only"), 405,
                            headers={**HEADERS, "Allow": "GET, HEAD"})

    routes = [Route("/", index), Route("/models/{name}", model),
              Route("/models/{name}/compare", compare), Route("/sweeps/{sweep_id}", sweep),
              Route("/assets/{file}", assets)]
    hosts = allowed_hosts or ["127.0.0.1", "localhost", "[::1]"]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed},
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def serve(registry_root: Path, project: Path, *, host: str = "127.0.0.1", port: int = 8090
          ) -> None:
    import uvicorn

    from framework.serve.cli import bind

    sock = bind(host, port, prog="ui")
    bound = sock.getsockname()[1]
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    if host not in ("127.0.0.1", "localhost", "::1"):
        hosts.append(f"[{host}]" if ":" in host else host)
        if host in ("0.0.0.0", "::"):
            hosts = ["*"]
    app = create_app(registry_root, project, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(f"ui on http://{shown}:{bound} (read-only, no login: keep it on this "
                      "machine; Ctrl-C stops it)", flush=True)

    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                            timeout_graceful_shutdown=2)
    Server(config).run(sockets=[sock])
