"""The Starlette app: routes, bounded work per request, error bodies, metrics, alias following.

Bounded work. ``/invocations`` requests in flight are capped (503 with ``Retry-After`` beyond
``max_concurrency``); a request over ``max_cells`` cells or ``max_body_bytes`` bytes is a 413
before its values are decoded. Small JSON requests are decoded and scored on the event loop (a
thread hop costs more than a few rows); a large one (by bytes, cells or columns), and any CSV or
Parquet body, first waits for one of ``threads`` scoring threads, then its body is read (under
``body_timeout``), decoded and scored there. So memory grows with
the threads, not with the clients, and ``/ping`` and ``/health`` answer while a large batch is
being scored. See :mod:`framework.serve.limits`.

Alias following: a server started on ``NAME@ALIAS`` (or ``NAME/latest``) asks the registry every
``poll_interval`` seconds which version the alias names (one indexed SQLite read, in a worker
thread). When it changed, the new version is loaded, its schema compiled and its numpy mode
probed, all in that thread; then one attribute assignment swaps the served model. A request reads
that attribute once when it starts and keeps its model to the end, so requests in flight finish on
the version they began with and none fails. A version that cannot be loaded is logged and counted,
and the previous one keeps serving (retried when the alias moves again, or after a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

import framework
from framework.registry import ModelRef, Registry, open_registry, parse_uri
from framework.registry.core import check_alias
from framework.serve import protocol
from framework.serve.limits import (DEFAULT_POLL_INTERVAL, INLINE_BODY_BYTES, INLINE_CELLS,
                                    INLINE_COLUMNS, Limits)
from framework.errors import UsageError
from framework.serve.live import DEFAULT_WINDOW, LiveWindow
from framework.serve.metrics import PREFIX, Metrics
from framework.serve.model import LoadedModel, load_version, quiet_feature_name_warning
from framework.serve.openapi import openapi_spec
from framework.serve.predlog import (DEFAULT_FLUSH_INTERVAL, PredictionLog, new_request_id,
                                     valid_request_id)
from framework.serve.protocol import (BAD_REQUEST, ENDPOINT_NOT_FOUND, INTERNAL_ERROR,
                                      RESOURCE_LIMIT_EXCEEDED, TEMPORARILY_UNAVAILABLE,
                                      RequestError)

log = logging.getLogger("framework.serve")

ENV_CONFIG = "FRAMEWORK_SERVE_CONFIG"
#: The header a ``--split`` assigns requests by, unless ``monitor.ab.key`` names another.
DEFAULT_SPLIT_KEY = "x-request-id"
ROUTES = ("/invocations", "/ping", "/health", "/version", "/metadata", "/metrics",
          "/openapi.json")
_RETRY_FAILED_SECONDS = 60.0
_JSON = "application/json"
_CLOSE = {"connection": "close"}


class ServedModel:
    """The model being served, and the registry it follows."""

    def __init__(self, ref: ModelRef, registry: Registry, *, poll_interval: float,
                 numpy_mode: bool = True, trusted: tuple[str, ...] | None = None) -> None:
        self.ref = ref
        self.registry = registry
        self.poll_interval = poll_interval
        self.numpy_mode = numpy_mode
        self.trusted = trusted
        self.follows = ref.alias is not None or ref.latest
        mv = registry.resolve(ref)
        #: The one reference requests read; replaced whole, never mutated.
        self.current: LoadedModel = load_version(registry, mv, alias=self.alias,
                                                 numpy_mode=numpy_mode, trusted=trusted)
        self.openapi = openapi_spec(self.current)
        self.last_error: str | None = None
        self._failed: tuple[int, float] | None = None

    @property
    def alias(self) -> str | None:
        return self.ref.alias or ("latest" if self.ref.latest else None)

    def _target_version(self) -> int | None:
        store = self.registry.store
        if self.ref.alias is not None:
            return store.alias_version(self.ref.name, self.ref.alias)
        return store.latest_version(self.ref.name)

    def poll_once(self) -> LoadedModel | None:
        """Blocking: the newly loaded version when the alias moved, else None."""
        target = self._target_version()
        current = self.current.version.version
        if target is None or target == current:
            if target == current:
                self.last_error = None  # back on the served version after a failed switch
            return None
        if self._failed and self._failed[0] == target and \
                time.monotonic() - self._failed[1] < _RETRY_FAILED_SECONDS:
            return None
        try:
            mv = self.registry.get(self.ref.name, target)
            loaded = load_version(self.registry, mv, alias=self.alias,
                                  numpy_mode=self.numpy_mode, trusted=self.trusted)
        except Exception as exc:  # keep serving the current version
            self._failed = (target, time.monotonic())
            self.last_error = f"v{target}: {type(exc).__name__}: {exc}"
            raise
        self._failed = None
        self.last_error = None
        return loaded

    def swap(self, loaded: LoadedModel) -> None:
        spec = openapi_spec(loaded)
        previous = self.current
        self.openapi = spec
        self.current = loaded  # the atomic switch
        log.info("%s@%s moved: now serving v%d (was v%d)", loaded.version.name, self.alias,
                 loaded.version.version, previous.version.version)

    async def follow(self, metrics: Metrics, *, primary: bool = True) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                loaded = await asyncio.to_thread(self.poll_once)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.load_failures += 1
                log.error("%s@%s: cannot switch (%s); still serving v%d", self.ref.name,
                          self.alias, exc, self.current.version.version)
                continue
            if loaded is not None:
                self.swap(loaded)
                metrics.switches += 1
                if primary:
                    metrics.model = (loaded.version.name, loaded.version.version,
                                     self.alias or "")


@dataclass
class Arm:
    """One alias of a ``--split``: its share of the traffic and the version it follows."""

    alias: str
    weight: float
    served: ServedModel


class Router:
    """Assigns a request to an arm by its key (the ``key`` header, else its request id): the
    key's hash, read as a number in [0, 1), falls in one arm's share of the cumulative weights,
    so a client that sends the same key always meets the same arm."""

    def __init__(self, arms: Sequence[Arm], key: str = DEFAULT_SPLIT_KEY) -> None:
        total = float(sum(a.weight for a in arms))
        self.arms = list(arms)
        self.key = key.lower()
        running, bounds = 0.0, []
        for arm in arms:
            running += arm.weight / total
            bounds.append(running)
        self.bounds = bounds

    def pick(self, key: str) -> Arm:
        h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64
        for arm, bound in zip(self.arms, self.bounds):
            if h < bound:
                return arm
        return self.arms[-1]


def parse_split(text: str) -> list[tuple[str, float]]:
    """``champion=90,challenger=10`` as ``[("champion", 90.0), ("challenger", 10.0)]``."""
    from framework.registry.core import check_alias

    out: list[tuple[str, float]] = []
    for part in str(text).split(","):
        alias, sep, weight = part.strip().partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not sep or not alias or not (value >= 0 and math.isfinite(value)):
            raise UsageError(f"--split {text!r}: expected ALIAS=WEIGHT,ALIAS=WEIGHT (e.g. "
                             f"champion=90,challenger=10), found {part.strip()!r}")
        out.append((check_alias(alias.strip()), value))
    if len(out) < 2 or len({a for a, _ in out}) != len(out):
        raise UsageError(f"--split {text!r}: name at least two different aliases")
    if sum(w for _, w in out) <= 0:
        raise UsageError(f"--split {text!r}: the weights add up to 0")
    return out


# -- responses -------------------------------------------------------------------------------------

def json_response(payload: Any, status: int = 200) -> Response:
    return Response(protocol.dumps(payload), status_code=status, media_type=_JSON)


def error_response(err: RequestError) -> Response:
    body: dict[str, Any] = {"error_code": err.code, "message": err.message}
    if err.details is not None:
        body["details"] = err.details
    response = json_response(body, err.status)
    if err.headers:
        response.headers.update(err.headers)
    return response


# -- the app ---------------------------------------------------------------------------------------

def create_app(model_uri: str, *, registry: str | os.PathLike[str] | None = None,
               limits: Limits | None = None, poll_interval: float = DEFAULT_POLL_INTERVAL,
               numpy_mode: bool = True, trusted: Sequence[str] | None = None,
               log_predictions: float = 1.0, log_columns: Sequence[str] = (),
               monitor_window: int = DEFAULT_WINDOW,
               log_flush_interval: float = DEFAULT_FLUSH_INTERVAL,
               split: Sequence[tuple[str, float]] | None = None, shadow: str | None = None,
               split_key: str = DEFAULT_SPLIT_KEY) -> Starlette:
    """The ASGI app serving ``model_uri`` (``NAME@ALIAS``, ``NAME/3``, ``models:/NAME@ALIAS``).

    The model is loaded here, before the app exists: an unknown model or a version that cannot be
    loaded raises (:class:`~framework.errors.FrameworkError`). ``limits`` bounds the work per
    request (:class:`~framework.serve.limits.Limits`); ``trusted`` names model-file classes
    trusted beyond the allowlist (default: the project's ``trusted_types``). ``poll_interval``
    <= 0 stops alias following. ``log_predictions`` is the share of requests written to the
    prediction log (:mod:`framework.serve.predlog`; 0: none), with the request columns
    ``log_columns`` that the model does not take (a fairness group, for example); the latest
    ``monitor_window`` logged rows feed the drift gauges of ``/metrics``.

    ``split`` (``[(alias, weight), ...]``, with ``model_uri`` a bare name) serves several aliases
    of one model, each request assigned to one by its ``split_key`` header (sticky, see
    :class:`Router`). ``shadow`` (an alias or a version number) also scores every request with
    that version off the response path; both answers are logged.
    """
    limits = limits or Limits()
    quiet_feature_name_warning()
    if split:
        from framework.registry.core import check_name

        if any(c in model_uri for c in "@/:"):
            raise UsageError(f"serve --split: name the model alone ({model_uri!r} names one "
                             "version); the split says which aliases share its traffic")
        refs = [ModelRef(check_name(model_uri), alias=alias) for alias, _ in split]
    else:
        refs = [parse_uri(model_uri)]
    reg = open_registry(registry, create=False)
    options = {"poll_interval": poll_interval, "numpy_mode": numpy_mode,
               "trusted": None if trusted is None else tuple(trusted)}
    try:
        arms = [Arm(ref.alias or "", weight, ServedModel(ref, reg, **options))  # type: ignore
                for ref, (_, weight) in zip(refs, split or [("", 1.0)])]
        served = arms[0].served
        shadowed = None
        if shadow:
            target = ModelRef(refs[0].name, version=int(shadow)) if str(shadow).isdigit() \
                else ModelRef(refs[0].name, alias=check_alias(shadow))
            shadowed = ServedModel(target, reg, **options)  # type: ignore[arg-type]
        predlog = PredictionLog(reg.root, sample=log_predictions, extra_columns=log_columns,
                                flush_interval=log_flush_interval)
        if predlog.enabled:
            try:
                predlog.check_writable()
            except OSError as exc:
                raise UsageError(f"serve: {exc}; pass --log-predictions off to serve without "
                                 "a prediction log") from None
    except BaseException:
        reg.close()
        raise
    return build_app(served, predlog, limits=limits, monitor_window=monitor_window,
                     on_close=reg.close,
                     router=Router(arms, split_key) if split else None, shadow=shadowed)


def build_app(served: Any, predlog: PredictionLog, *, limits: Limits,
              monitor_window: int = DEFAULT_WINDOW,
              on_close: Callable[[], None] | None = None, router: Router | None = None,
              shadow: ServedModel | None = None) -> Starlette:
    """The app serving ``served`` (a :class:`ServedModel`, or any object with its ``current``,
    ``alias``, ``follows``, ``poll_interval``, ``openapi``, ``last_error`` and ``ref``), logging
    to ``predlog``; ``on_close`` runs at shutdown. With a ``router``, each request is scored by
    the arm it assigns (``served`` is the first arm); with a ``shadow``, every scored request is
    scored again by it in a thread of its own, after the answer is on its way."""
    metrics = Metrics(ROUTES)
    live = LiveWindow(monitor_window)

    def primary_batch(batch: Any) -> None:  # the drift gauges follow the first arm's version
        if batch.model.version.version == served.current.version.version:
            live.add(batch)
    predlog.listeners.append(primary_batch)
    traffic = Traffic()
    metrics.sections.append(lambda: _log_counters(predlog) + traffic.render() +
                            live.render(PREFIX))
    shadower = None
    if shadow is not None:
        from framework.serve.shadow import ShadowScorer

        shadower = ShadowScorer(shadow, predlog, traffic,
                                backlog_rows=max(10_000, 4 * limits.threads * INLINE_CELLS))
    mv = served.current.version
    metrics.model = (mv.name, mv.version, served.alias or "")
    executor = ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix="score")
    admitted = asyncio.Semaphore(limits.threads)  # large requests being read, decoded, scored
    in_flight = 0
    extra_columns = predlog.extra_columns

    def parse_and_score(model: LoadedModel, body: bytes, kind: str
                        ) -> tuple[protocol.Table, Any, Any, str, bytes]:
        table = model.parse(body, kind, max_cells=limits.max_cells)
        method = model.method(table.params)
        x, predictions = score(model, table, method)
        return table, x, predictions, method, protocol.dumps({"predictions": predictions})

    async def invocations(request: Request) -> Response:
        nonlocal in_flight
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id")
        if request_id is None:
            request_id = new_request_id()
        elif not valid_request_id(request_id):
            metrics.error("/invocations", BAD_REQUEST)
            return error_response(RequestError(
                400, BAD_REQUEST, "X-Request-ID must be 1 to 128 letters, digits, '.', '_', "
                ":' or '-', starting with a letter or digit; received "
                f"{protocol.short(repr(request_id), 60)}"))
        id_header = {"x-request-id": request_id}
        arm_alias = served.alias
        if router is not None:
            arm = router.pick(request.headers.get(router.key) or request_id)
            model, arm_alias = arm.served.current, arm.alias
        else:
            model = served.current  # read once: this request keeps this version to the end
        if in_flight >= limits.max_concurrency:
            metrics.error("/invocations", TEMPORARILY_UNAVAILABLE)
            return error_response(RequestError(
                503, TEMPORARILY_UNAVAILABLE, f"{limits.max_concurrency} requests are being "
                "scored (--max-concurrency); retry shortly", headers={"retry-after": "1",
                                                                     **_CLOSE, **id_header}))
        in_flight += 1
        metrics.in_flight = in_flight
        logged = predlog.enabled and predlog.sampled()
        try:
            kind = protocol.content_kind(request.headers.get("content-type"))
            declared = declared_length(request, limits.max_body_bytes)
            loop = asyncio.get_running_loop()
            if kind == "json" and declared is not None and declared <= INLINE_BODY_BYTES:
                body = await read_body(request, limits, declared)
                table = model.parse(body, kind, max_cells=limits.max_cells)  # shape only
                method = model.method(table.params)
                cells = table.n_rows * max(table.width, len(model.columns or ()), 1)
                if cells > INLINE_CELLS or table.width > INLINE_COLUMNS:
                    async with admitted:
                        x, predictions = await loop.run_in_executor(executor, score, model,
                                                                    table, method)
                else:
                    x, predictions = score(model, table, method)
                payload = protocol.dumps({"predictions": predictions})
            else:  # large, chunked, CSV or Parquet: all of it in a scoring thread
                async with admitted:  # wait for a thread before reading the body
                    body = await read_body(request, limits, declared)
                    table, x, predictions, method, payload = await loop.run_in_executor(
                        executor, parse_and_score, model, body, kind)
        except RequestError as err:
            metrics.error("/invocations", err.code)
            if logged and err.status == 400:
                predlog.refused(model, request_id, err.code, err.columns)
            err.headers.update(id_header)
            return error_response(err)
        except ClientDisconnect:
            metrics.error("/invocations", "CLIENT_DISCONNECTED")
            return Response(status_code=400, headers=_CLOSE)
        except Exception as exc:  # never a 5xx for an input: a clear 400 instead
            log.debug("unexpected error scoring a request", exc_info=True)
            metrics.error("/invocations", protocol.BAD_REQUEST)
            err = protocol.bad_request(
                f"the request could not be scored ({type(exc).__name__}: "
                f"{protocol.short(str(exc), 200)})")
            err.headers.update(id_header)
            return error_response(err)
        finally:
            in_flight -= 1
            metrics.in_flight = in_flight
        rows = table.n_rows
        elapsed = time.perf_counter() - started
        extras = extras_of(table, extra_columns) if extra_columns and (logged or shadow) \
            else None
        if logged and rows:
            predlog.record(model, request_id, x, predictions, method, extras, alias=arm_alias,
                           latency_ms=elapsed * 1000)
        metrics.prediction(rows, elapsed)
        traffic.answered(arm_alias, model.version.version, elapsed)
        if shadow is not None and rows:
            shadow_score(table, method, request_id, extras, model, logged)
        headers = {"x-model-version": model.tag, **id_header}
        if arm_alias:
            headers["x-model-alias"] = arm_alias
        return Response(payload, media_type=_JSON, headers=headers)

    def shadow_score(table: protocol.Table, method: str, request_id: str,
                     extras: dict[str, list[Any]] | None, answered: LoadedModel,
                     logged: bool) -> None:
        """Queue the request for the shadow (:mod:`framework.serve.shadow`); a full backlog
        drops it (counted). Nothing here can touch the answer."""
        assert shadow is not None and shadower is not None
        if shadow.current.version.version == answered.version.version:
            return  # the shadow alias names the version that answered: nothing to compare
        shadower.submit(table, method, request_id, extras, logged)

    async def ping(request: Request) -> Response:
        return Response("\n", media_type=_JSON)

    async def version(request: Request) -> Response:
        # as `mlflow models serve` answers it: the bare version, labelled application/json
        return Response(framework.__version__, media_type=_JSON)

    async def metadata(request: Request) -> Response:
        body = describe(served, limits)
        if router is not None:
            body["split"] = [{"alias": a.alias, "weight": a.weight, "share": round(
                a.weight / sum(b.weight for b in router.arms), 6),
                "version": a.served.current.version.version,
                "last_switch_error": a.served.last_error} for a in router.arms]
            body["split_key"] = router.key
        if shadow is not None:
            body["shadow"] = {"alias": shadow.alias, "version": shadow.current.version.version,
                              "last_switch_error": shadow.last_error}
        return json_response(body)

    async def metrics_endpoint(request: Request) -> Response:
        await asyncio.to_thread(live.refresh)  # the drift gauges, off the event loop
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return json_response(served.openapi)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err = RequestError(404, ENDPOINT_NOT_FOUND,
                               f"no route {protocol.short(request.url.path, 80)!r}; "
                               f"routes: {', '.join(ROUTES)}")
        elif exc.status_code == 405:
            err = RequestError(405, protocol.BAD_REQUEST,
                               f"{request.method} is not allowed on {request.url.path}")
        else:
            err = RequestError(exc.status_code, protocol.BAD_REQUEST, str(exc.detail))
        metrics.error(request.url.path, err.code)
        response = error_response(err)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected server error")
        metrics.error(request.url.path, INTERNAL_ERROR)
        return error_response(RequestError(500, INTERNAL_ERROR, "internal error"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = []
        followed = [served] + [a.served for a in (router.arms[1:] if router else [])] + \
            ([shadow] if shadow is not None else [])
        for i, one in enumerate(followed):
            if one.follows and one.poll_interval > 0:
                tasks.append(asyncio.create_task(one.follow(metrics, primary=i == 0)))
        predlog.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            executor.shutdown(wait=False, cancel_futures=True)
            if shadower is not None:
                await asyncio.to_thread(shadower.close)  # before the log's last flush
            await asyncio.to_thread(predlog.close)  # a graceful shutdown loses no logged row
            if on_close is not None:
                on_close()

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.router.redirect_slashes = False  # /invocations/ is a 404, never a redirect built from Host
    app.state.served = served
    app.state.router = router
    app.state.shadow = shadow
    app.state.traffic = traffic
    app.state.limits = limits
    app.state.metrics = metrics
    app.state.predlog = predlog
    app.state.live = live
    return app


class MetricsMiddleware:
    """Pure ASGI: times every HTTP request and counts it by route and status."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(scope["path"], scope["method"], status,
                                 time.perf_counter() - started)


def score(model: LoadedModel, table: protocol.Table, method: str) -> tuple[Any, Any]:
    """``(input, predictions)``: the model's checked input for ``table`` and what ``method``
    returned for it."""
    x = model.prepare(table)
    return x, model.predict(x, method)


def extras_of(table: protocol.Table, names: Sequence[str]) -> dict[str, list[Any]]:
    """The values of request columns ``names`` (logged alongside, not model inputs)."""
    out: dict[str, list[Any]] = {}
    if table.frame is not None:
        for name in names:
            if name in table.frame.columns:
                out[name] = table.frame[name].tolist()
        return out
    if table.columns is None or table.rows is None:
        return out
    labels = [c if isinstance(c, str) else str(c) for c in table.columns]
    for name in names:
        if name in labels:
            j = labels.index(name)
            out[name] = [row[j] if j < len(row) else None for row in table.rows]
    return out


class Traffic:
    """Answers by alias and version (their count and time), and what the shadow did."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()  # the shadow's counters change in its thread
        self.answers: dict[tuple[str, int], list[float]] = {}  # (alias, version): [n, seconds]
        self.shadow_scored = self.shadow_failed = self.shadow_dropped = 0

    def answered(self, alias: str | None, version: int, seconds: float) -> None:
        slot = self.answers.setdefault((alias or "", version), [0, 0.0])
        slot[0] += 1
        slot[1] += seconds

    def render(self) -> list[str]:
        from framework.serve.metrics import _labels

        out = [f"# HELP {PREFIX}_answers_total Answered /invocations requests, by alias and "
               "version.", f"# TYPE {PREFIX}_answers_total counter"]
        for (alias, version), (n, _) in sorted(self.answers.items()):
            out.append(f"{PREFIX}_answers_total"
                       f"{_labels((('alias', alias), ('version', str(version))))} {n}")
        for name, value, text in (
                ("shadow_scored_total", self.shadow_scored, "Requests the shadow scored."),
                ("shadow_failed_total", self.shadow_failed,
                 "Requests the shadow could not score (the answer was not affected)."),
                ("shadow_dropped_total", self.shadow_dropped,
                 "Requests not given to the shadow because its backlog was full.")):
            out += [f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} counter",
                    f"{PREFIX}_{name} {value}"]
        return out


def _log_counters(predlog: PredictionLog) -> list[str]:
    lines = []
    for name, value, text in (
            ("logged_rows_total", predlog.logged_rows, "Rows written to the prediction log."),
            ("log_dropped_rows_total", predlog.dropped_rows,
             "Rows the prediction log dropped (buffer full or a write failed).")):
        lines += [f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} counter",
                  f"{PREFIX}_{name} {value}"]
    return lines


def declared_length(request: Request, limit: int) -> int | None:
    """The body size the request declares (None: chunked); a 413 over ``limit``."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit():
        raise RequestError(400, BAD_REQUEST, "Content-Length is not a number", headers=_CLOSE)
    size = int(declared)
    if size > limit:
        raise RequestError(413, RESOURCE_LIMIT_EXCEEDED,
                           f"the body has {size} bytes, over the limit of {limit} bytes "
                           "(--max-body-bytes); send smaller batches", headers=_CLOSE)
    return size


async def read_body(request: Request, limits: Limits, declared: int | None) -> bytes:
    """The body, refusing (413) one over ``max_body_bytes`` while streaming, and (400) one that
    does not arrive within ``body_timeout`` seconds."""
    chunks = []
    received = 0
    limit = limits.max_body_bytes
    try:
        async with asyncio.timeout(limits.body_timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise RequestError(413, RESOURCE_LIMIT_EXCEEDED,
                                       f"the body is over the limit of {limit} bytes "
                                       "(--max-body-bytes); send smaller batches", headers=_CLOSE)
                chunks.append(chunk)
    except TimeoutError:
        expected = f" of the {declared} declared" if declared is not None else ""
        raise RequestError(400, BAD_REQUEST,
                           f"the body did not arrive within {limits.body_timeout:g} s "
                           f"({received} bytes{expected} received)", headers=_CLOSE) from None
    return b"".join(chunks)


def describe(served: ServedModel, limits: Limits | None = None) -> dict[str, Any]:
    """The body of ``GET /metadata``."""
    model = served.current
    mv = model.version
    limits = limits or Limits()
    return {
        "name": mv.name,
        "version": mv.version,
        "alias": served.alias,
        "uri": mv.uri,
        "served_uri": str(served.ref),
        "follows_alias": served.follows and served.poll_interval > 0,
        "status": mv.status,
        "created_at": mv.created_at,
        "sha256": mv.sha256,
        "metrics": mv.metrics,
        "primary_metric": mv.primary_metric,
        "input_schema": model.schema,
        "target": mv.target,
        "model_class": f"{type(model.estimator).__module__}.{type(model.estimator).__name__}",
        "predict_methods": list(model.methods),
        "classes": model.classes,
        "loaded_at": model.loaded_at,
        "last_switch_error": served.last_error,
        "framework_version": framework.__version__,
        "limits": {"max_body_bytes": limits.max_body_bytes, "max_cells": limits.max_cells,
                   "max_concurrency": limits.max_concurrency,
                   "header_timeout": limits.header_timeout, "body_timeout": limits.body_timeout},
    }


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory`` (``--workers N``): the config comes from
    ``$FRAMEWORK_SERVE_CONFIG`` (JSON with ``model_uri``, ``limits`` and create_app's other
    keyword arguments)."""
    from framework.io import preload_skops
    from framework.serve.startup import startup_gc

    config = json.loads(os.environ[ENV_CONFIG])
    with startup_gc():
        preload_skops()
        limits = Limits(**config.pop("limits"))
        return create_app(config.pop("model_uri"), limits=limits, **config)
