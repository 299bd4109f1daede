"""The explorer's HTTP face: a JSON API under ``/api/`` (its OpenAPI schema at ``/api/openapi.json``)
and the page at ``/``, which uses nothing but that API.

Every request field is validated (types, ranges, finite numbers, no unknown fields); a body larger
than :attr:`Limits.max_body_bytes` is refused with a 413 without being kept; errors are JSON ``{"error": one
line}`` with a 4xx code, and an internal error is a 500 with no traceback. No request names a file:
the run and its data are fixed when the server starts.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import PngImagePlugin
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from vaekit.errors import VaekitError
from vaekit.web.explorer import Explorer, Limits

log = logging.getLogger("vaekit")

STATIC = Path(__file__).parent / "static"
CAPS = Limits()  # request-field caps (the page reads them from /api/info)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "application/octet-stream")
MAX_ERRORS = 10  # validation errors listed in a 422's detail
DRAIN_BYTES = 32 * 1024 * 1024  # an oversized body read and dropped so that its client can read the 413
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
}

Latent = Annotated[float, Field(ge=-CAPS.max_abs_latent, le=CAPS.max_abs_latent, allow_inf_nan=False)]
Code = Annotated[list[Latent], Field(min_length=1, max_length=4096)]
Label = Annotated[int | Annotated[str, Field(max_length=200)] | None, Field(description="class index or name "
                                                                                     "(conditional runs)")]


class ErrorAnswer(BaseModel):
    error: str = Field(description="one line: the field or thing at fault and what was expected")


class InvalidAnswer(ErrorAnswer):
    detail: list[dict[str, Any]] = Field(description=f"the first {MAX_ERRORS} validation errors")
    errors: int = Field(description="how many there were")


ERROR_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "bad input (a value the run cannot take)"},
    413: {"model": ErrorAnswer, "description": "request body too large"},
    415: {"model": ErrorAnswer, "description": "not an image (uploads)"},
    422: {"model": InvalidAnswer, "description": "a field fails validation"},
}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SampleRequest(_Request):
    n: int = Field(16, ge=1, le=CAPS.max_items, description="how many samples")
    temperature: float = Field(1.0, ge=0.0, le=3.0, allow_inf_nan=False, description="scale of the prior's spread")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    label: Label = None


class DecodeRequest(_Request):
    z: list[Code] = Field(min_length=1, max_length=CAPS.max_items, description="codes, one row each")
    label: Label = None


class Endpoint(_Request):
    index: int | None = Field(None, ge=0, description="a held-out input")
    z: Code | None = Field(None, description="or a code")

    @model_validator(mode="after")
    def _one(self) -> Endpoint:
        if (self.index is None) == (self.z is None):
            raise ValueError("give exactly one of index and z")
        return self


class InterpolateRequest(_Request):
    a: Endpoint
    b: Endpoint
    steps: int = Field(11, ge=2, le=CAPS.max_items)
    path: Literal["linear", "spherical"] = "spherical"
    label: Label = None


class MapDecodeRequest(_Request):
    method: Literal["pca", "tsne"] = "pca"
    x: float = Field(ge=-1e6, le=1e6, allow_inf_nan=False)
    y: float = Field(ge=-1e6, le=1e6, allow_inf_nan=False)
    label: Label = None


async def discard_body(scope, receive, read: int = 0, limit: int = DRAIN_BYTES) -> None:
    """Read the rest of a request's body and drop it (``read`` bytes of it read already), unless it
    is declared over ``limit`` bytes or its client waits for a ``100 Continue`` (it has sent none).

    Called before an answer that closes the connection unasked (413, 503): a client such as Python's
    http.client sends its whole body before it reads the answer, and a server that closes while the
    body is still arriving makes the kernel send a reset, which throws the answer away. The server's
    request deadline bounds the time this takes."""
    headers = dict(scope.get("headers") or [])
    length = headers.get(b"content-length", b"0")
    if headers.get(b"expect", b"").lower() == b"100-continue" or not length.isdigit() or int(length) > limit:
        return
    while read <= limit:
        event = await receive()
        if event["type"] != "http.request" or not event.get("more_body", False):
            return
        read += len(event.get("body", b""))


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 (and ``Connection: close``): by
    Content-Length when it is given, else by reading the (chunked) body here, up to the cap, and
    handing the app a replay of it. The body is read to its end first (see :func:`discard_body`)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send, 0)
                return
            await self.app(scope, receive, send)  # the server holds the body to its stated length
            return
        events, size = [], 0
        while True:
            event = await receive()
            if event["type"] != "http.request":  # the client went away
                events.append(event)
                break
            size += len(event.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, size if event.get("more_body", False) else None)
                return
            events.append(event)
            if not event.get("more_body", False):
                break
        replay = iter(events)

        async def replayed():
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope, receive, send, read: int | None) -> None:
        """The 413, after the rest of the body (``read`` bytes of it read so far; None: all of it)."""
        if read is not None:
            await discard_body(scope, receive, read)
        await JSONResponse({"error": f"request body: expected at most {self.max_bytes:,} bytes"}, status_code=413,
                           headers={**SECURITY_HEADERS, "Connection": "close"})(scope, receive, send)


def _one_line(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    return f"{where}: {first.get('msg', 'invalid')}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


class _ModelCalls:
    """How a request reaches the model without stalling the event loop.

    The event loop never waits for model work (that would stall every other request, static files
    included). Long calls (items, whose score may draw thousands of samples; uploads) go to a worker
    thread, one at a time (a model call only shares the cores with another); uploads are decoded at
    most two at a time (a 2 MiB PNG may inflate tens of MB); maps are fitted beside them (a t-SNE
    takes seconds). Short calls (sample, decode, interpolate, map/decode: at most 64 codes) run
    right on the loop when the model is free, and go to the worker when it is not: the thread hop
    costs more than decoding a code (50 clients x 20 decodes of 28x28 images: 903 requests/s against
    623 always in a thread, same session; BENCHMARKS.md).
    """

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.model_slot, self.upload_slots = anyio.CapacityLimiter(1), anyio.CapacityLimiter(2)

    async def in_model(self, function, *args):
        return await anyio.to_thread.run_sync(partial(function, *args), limiter=self.model_slot)

    async def quick(self, function, *args):
        if self.model_slot.borrowed_tokens == 0 and self.explorer.lock.acquire(blocking=False):  # free: no waiting
            try:
                return function(*args)
            finally:
                self.explorer.lock.release()
        return await self.in_model(function, *args)


def create_app(explorer: Explorer, api_only: bool = False) -> FastAPI:
    """The FastAPI application over ``explorer``; ``api_only`` leaves out the page."""
    app = FastAPI(title="vaekit latent explorer", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", responses=ERROR_ANSWERS,
                  description="The JSON API of `vaekit explore`: samples, decodings, reconstructions, "
                              "interpolations and latent maps of one trained run.")
    app.state.explorer = explorer
    # A PNG's text chunks may inflate to 64 MB under Pillow's defaults; an explorer needs none of them.
    PngImagePlugin.MAX_TEXT_CHUNK = PngImagePlugin.MAX_TEXT_MEMORY = 256 * 1024
    calls = _ModelCalls(explorer)
    app.add_middleware(BodyLimit, max_bytes=explorer.limits.max_body_bytes)
    _errors(app)
    _code_routes(app, explorer, calls)
    _item_routes(app, explorer, calls)
    _map_routes(app, explorer, calls)
    if not api_only:
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        def page() -> FileResponse:
            return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def _errors(app: FastAPI) -> None:
    """The security headers on every answer, and errors as one-line JSON (a 500 without a traceback)."""

    @app.middleware("http")
    async def _headers(request, call_next):
        try:
            response = await call_next(request)
        except Exception:  # noqa: BLE001 (answered here so that a 500 carries the headers too)
            log.exception("explorer: internal error")
            response = JSONResponse({"error": "internal error (see the server's log)"}, status_code=500)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(VaekitError)
    async def _bad_input(_request, error: VaekitError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, error: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in error.errors()]
        # the first few only: a body of 260,000 bad numbers would otherwise answer with 30 MB
        return JSONResponse({"error": _one_line(errors), "detail": errors[:MAX_ERRORS], "errors": len(errors)},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)


def _code_routes(app: FastAPI, explorer: Explorer, calls: _ModelCalls) -> None:
    """The run itself, and codes: info, samples from the prior, decodings."""

    @app.get("/api/info", summary="The run: data kind, latent size, classes, most informative dimensions, "
                                  "anomaly threshold, request limits")
    def info() -> dict[str, Any]:
        return explorer.info()

    @app.post("/api/sample", summary="New samples z ~ p(z) (scaled by temperature), decoded")
    async def sample(request: SampleRequest) -> dict[str, Any]:
        return await calls.quick(explorer.sample, request.n, request.temperature, request.seed, request.label)

    @app.post("/api/decode", summary="Decode codes z (one row each)")
    async def decode(request: DecodeRequest) -> dict[str, Any]:
        return await calls.quick(explorer.decode, request.z, request.label)


def _item_routes(app: FastAPI, explorer: Explorer, calls: _ModelCalls) -> None:
    """Inputs: held-out items, uploads, and the path between two of them."""

    @app.get("/api/item/{index}", summary="A held-out input: its code, reconstruction, anomaly score and "
                                          "nearest neighbours in latent space")
    async def item(index: Annotated[int, PathParam(ge=0)]) -> dict[str, Any]:
        return await calls.in_model(explorer.item, index)

    @app.get("/api/input/{index}", summary="A held-out input alone, with its label (for hovering over the map)")
    async def input_item(index: Annotated[int, PathParam(ge=0)]) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(explorer.input, index)

    @app.post("/api/reconstruct", summary="An uploaded image: its code, reconstruction, anomaly score against "
                                          "the run's threshold, and nearest neighbours")
    async def reconstruct(file: Annotated[UploadFile, File(description="PNG, JPEG, GIF, BMP or WebP")]
                          ) -> dict[str, Any]:
        if (file.content_type or "").split(";")[0].strip().lower() not in IMAGE_TYPES:
            raise HTTPException(415, f"file: expected an image ({', '.join(IMAGE_TYPES)}), got {file.content_type!r}")
        data = await file.read()
        async with calls.upload_slots:
            return await calls.in_model(explorer.upload, data)

    @app.post("/api/interpolate", summary="Decoded points on the path between two inputs or codes")
    async def interpolate(request: InterpolateRequest) -> dict[str, Any]:
        a, b = request.a.model_dump(), request.b.model_dump()
        return await calls.quick(explorer.interpolate, a, b, request.steps, request.path, request.label)


def _map_routes(app: FastAPI, explorer: Explorer, calls: _ModelCalls) -> None:
    """The 2-D latent map and decoding a point of it."""

    @app.get("/api/map", summary="2-D map (PCA or t-SNE) of the held-out inputs' codes, with their labels")
    async def latent_map(method: Annotated[Literal["pca", "tsne"], Query()] = "pca") -> dict[str, Any]:
        return await anyio.to_thread.run_sync(explorer.map, method)

    @app.post("/api/map/decode", summary="Decode the code at a point of the map")
    async def map_decode(request: MapDecodeRequest) -> dict[str, Any]:
        await anyio.to_thread.run_sync(explorer.latent_map, request.method)  # fitted beside, not in, the model slot
        return await calls.quick(explorer.map_decode, request.method, request.x, request.y, request.label)
