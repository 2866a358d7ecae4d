"""Serve the packaged PlateReader over HTTP with MLEM's FastAPI server: platereader serve.

    dvc repro save_stack          # once: package out/models as out/mlem/plate_reader
    platereader serve [--host 127.0.0.1] [--port 8080] [--model out/mlem/plate_reader]
    python -m platereader.serving [...]                  # the same

    curl -F file=@car.jpg http://127.0.0.1:8080/predict
    -> {"plates": [{"plate": "ZH 123456", "text": "ZH123456", "format": "swiss", "confidence": 0.98,
                    "corners": [[x, y], [x, y], [x, y], [x, y]], "canton": "ZH", "number": "123456"}]}

Open http://127.0.0.1:8080/ in a browser: choose or drop a photo and see each plate outlined on it
with its text and confidence (platereader.webpage: one page, inline script, works offline).
http://127.0.0.1:8080/docs is the API's Swagger UI, served from the copy MLEM's own dependency
aiohttp-swagger installs, so it works offline too.

The server is MLEM's FastAPIServer (routes, request/response models, /interface.json) with a
thin layer for bad input, so that nothing a client sends gets a 5xx or kills the worker:

- a body over --max-body-mb gets 413 before the app reads it;
- an image MLEM hands to the model that is empty, not an image, truncated or too large in pixels
  (decompression bombs) gets 400 with the decoder's plain message (src/platereader/images.py);
- a request without the multipart field `file` gets 422 with a message saying what to send;
- every error body is {"error": "<one plain sentence>"}; a scene with no plate is a 200 answer
  with "plates": [].

The reader reads with the settings stored in the package (reader.json), not with params.py.
`mlem serve fastapi --model out/mlem/plate_reader` serves the same model and the same decoder,
with MLEM's defaults around them (any error is a 400 "UserError: ...", no body limit, no page,
/docs needs internet). See docs/serving.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import threading
from concurrent.futures import Future
from typing import ClassVar, Optional

# First: it registers the MLEM types the .mlem file names, and turns MLEM's analytics off
# before MLEM is imported.
from platereader import packaging, webpage
from platereader.errors import UserError, run_main

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from mlem.contrib.fastapi import FastAPIServer
from mlem.runtime.interface import Interface
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

logger = logging.getLogger("platereader.serving")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_MB = 20.0
FIELD = "file"  # the multipart field MLEM's FastAPI server reads binary arguments from
SWAGGER_ROUTE = "/static/swagger-ui"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


class BodyLimit:
    """ASGI middleware: requests with a body over `max_bytes` get 413 before the app sees them.

    A declared Content-Length over the limit is refused at once; a body of unknown length
    (chunked) is read up to the limit, then handed to the app, or refused at the first byte over.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                return await error(400, "the Content-Length header is not a number")(scope, receive, send)
            if length > self.max_bytes:
                return await self._refuse(scope, receive, send)
            return await self.app(scope, receive, send)
        # Unknown length: buffer up to the limit, then replay the body to the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        limit_mb = self.max_bytes / 1e6
        response = error(413, f"the request body is over the {limit_mb:g} MB limit: "
                              "send a smaller image (a JPEG of a few MB is plenty)")
        response.headers["connection"] = "close"
        await response(scope, receive, send)


class BatchingReader:
    """Reads the images of concurrent requests together, in one PlateReader.read call.

    Request threads decode their image and queue it; one inference thread takes everything
    queued (up to `max_batch`) and reads it as a batch. With one thread running torch, requests
    do not fight over the GIL and the cores, and a batch of 8 costs less than half of 8 single
    reads. Alone, a request is read at once (a batch of one): batching adds no waiting.
    """

    def __init__(self, reader, max_batch: int = 16):
        self.reader = reader
        self.max_batch = max_batch
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="plate-reader", daemon=True)
        self.thread.start()

    def read(self, images: list) -> list:
        """PlateReader.read for the images of one request, read with those of other requests."""
        futures = []
        for image in images:
            futures.append(Future())
            self.queue.put((image, futures[-1]))
        return [future.result() for future in futures]

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                answers = self.reader.read([image for image, _ in batch])
            except Exception:  # noqa: BLE001 - isolate the image at fault: read one by one
                for image, future in batch:
                    try:
                        future.set_result(self.reader.read([image])[0])
                    except Exception as exc:  # noqa: BLE001 - the request thread re-raises it
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers):
                future.set_result(answer)


class PlateReaderServer(FastAPIServer):
    """MLEM's FastAPI server with plain 4xx errors, a body limit, a web page and offline /docs."""

    type: ClassVar[str] = "platereader.serving.PlateReaderServer"

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 1e6)
    """Requests with a larger body get 413"""
    access_log: bool = True
    """Log one line per request"""
    log_level: str = "info"

    def app_init(self, interface: Interface) -> FastAPI:
        app = super().app_init(interface)  # MLEM's routes, including POST /predict
        app.title = "Swiss plate reader"
        app.description = ("POST an image (JPEG, PNG, WebP, BMP...; any size, any colour mode) "
                           f"as the multipart field `{FIELD}` to /predict; get its plates back. "
                           "The page at / does it from a browser.")
        _document_predict(app)
        _add_error_handlers(app)
        _add_page(app)
        _add_offline_docs(app)
        app.add_middleware(BodyLimit, max_bytes=self.max_body_bytes)
        return app

    def serve(self, interface: Interface):
        app = self.app_init(interface)
        announce(self.host, self.port)
        uvicorn.run(app, host=self.host, port=self.port, log_level=self.log_level,
                    access_log=self.access_log)


ERROR_SCHEMA = {"type": "object", "required": ["error"],
                "properties": {"error": {"type": "string", "description": "what is wrong and what to do"}}}


def _document_predict(app: FastAPI) -> None:
    """Name MLEM's /predict route and list its error answers in the OpenAPI document."""
    from fastapi.routing import APIRoute

    def answer(description):
        return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}

    for route in app.routes:
        if isinstance(route, APIRoute) and route.path == "/predict":
            route.summary = "Read the plates in an image"
            route.description = (
                f"Upload one image as the multipart field `{FIELD}`: JPEG, PNG, WebP, BMP, GIF or "
                "TIFF, any size up to 50 megapixels, any colour mode; EXIF orientation is applied. "
                "The answer lists every plate read, best first, with its text, format, confidence, "
                "corners and the format's fields (canton and number for a Swiss plate); "
                "`plates` is empty when there is none.")
            route.operation_id = "predict"
            route.responses = {**route.responses,
                               400: answer("Not an image, empty, truncated, or too many pixels"),
                               413: answer("Request body over the size limit"),
                               422: answer(f"No multipart field named '{FIELD}'")}


def _add_error_handlers(app: FastAPI) -> None:
    """One error shape, {"error": message}, with a 4xx for every problem a client can fix."""

    @app.exception_handler(UserError)
    def user_error(request: Request, exc: UserError):
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError):
        fields = {str(e.get("loc", ("", ""))[-1]) for e in exc.errors()}
        if FIELD in fields:
            return error(422, f"no image in the request: send it as multipart/form-data in a field "
                              f"named '{FIELD}' (curl -F {FIELD}=@car.jpg URL/predict)")
        return error(422, "invalid request: " + "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            message = (f"the request body is not valid multipart/form-data: send the image in a "
                       f"field named '{FIELD}' (curl -F {FIELD}=@car.jpg URL/predict)")
        return JSONResponse(status_code=exc.status_code, content={"error": message},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception):
        # Not a client problem: a bug. Say so, log the traceback, keep serving.
        logger.error("error while handling %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__}); the server logged the details")


def _add_page(app: FastAPI) -> None:
    """The web page (platereader.webpage) at /, instead of MLEM's redirect to /docs."""
    app.router.routes = [r for r in app.router.routes if not (isinstance(r, Route) and r.path == "/")]

    def page():
        return HTMLResponse(webpage.PAGE, headers={"Content-Security-Policy": webpage.CSP,
                                                   "X-Content-Type-Options": "nosniff"})

    app.add_api_route("/", page, include_in_schema=False, response_class=HTMLResponse)


def swagger_assets() -> Optional[str]:
    """Folder of the Swagger UI 3 bundle that aiohttp-swagger (a MLEM dependency) ships."""
    try:
        import aiohttp_swagger
    except ImportError:
        return None
    folder = os.path.join(os.path.dirname(aiohttp_swagger.__file__), "swagger_ui3")
    needed = ("swagger-ui-bundle.js", "swagger-ui.css")
    return folder if all(os.path.isfile(os.path.join(folder, n)) for n in needed) else None


def _add_offline_docs(app: FastAPI) -> None:
    """Serve /docs from local Swagger UI files instead of FastAPI's default CDN, when present.

    The bundled Swagger UI is 3.x, which reads OpenAPI 3.0 documents, not 3.1: the schema is
    declared as 3.0.2 (FastAPI's document here, with pydantic 1 models, is valid 3.0).
    """
    folder = swagger_assets()
    if folder is None:
        logger.warning("Swagger UI assets not found: /docs loads them from a CDN (needs internet)")
        return
    from starlette.staticfiles import StaticFiles

    app.openapi_version = "3.0.2"
    app.router.routes = [r for r in app.router.routes
                         if not (isinstance(r, Route) and r.path == app.docs_url)]
    app.mount(SWAGGER_ROUTE, StaticFiles(directory=folder), name="swagger-ui")

    def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=app.title + " - Swagger UI",
            swagger_js_url=f"{SWAGGER_ROUTE}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ROUTE}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ROUTE}/favicon-32x32.png")

    app.add_api_route(app.docs_url, docs, include_in_schema=False)


def load_interface(model: str):
    """The MLEM package at `model` (path without .mlem) as a MLEM interface, loaded."""
    from mlem.runtime.interface import ModelInterface

    return ModelInterface.from_model(packaging.load_package(model))


def announce(host: str, port: int) -> None:
    print(f"Serving on http://{host}:{port} (page: http://{host}:{port}/, API docs: "
          f"http://{host}:{port}/docs)", flush=True)


def build(options: dict) -> tuple[PlateReaderServer, Interface]:
    """The server and the loaded model interface for main()'s options."""
    # Concurrency comes from requests, not from splitting one small inference over the cores:
    # on a 2-core box, 2 intra-op threads made a single read 6x slower than 1.
    torch.set_num_threads(options["torch_threads"])
    interface = load_interface(options["model"])
    if options["max_batch"] > 1:
        model_type = interface.model.model_type
        model_type.bind(BatchingReader(model_type.model, options["max_batch"]))
    server = PlateReaderServer(host=options["host"], port=options["port"],
                               max_body_bytes=int(options["max_body_mb"] * 1e6),
                               access_log=not options["no_access_log"])
    return server, interface


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="platereader serve",
                                     description="Serve the plate reader over HTTP (MLEM FastAPI).")
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    parser.add_argument("--model", default=packaging.DEFAULT_OUTPUT,
                        help="MLEM package written by the save_stack stage (default: %(default)s)")
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB,
                        help="largest request body accepted, in MB (default: %(default)s)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="intra-op threads per inference (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=16,
                        help="most concurrent requests read in one batch; 1 = no batching "
                             "(default: %(default)s)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a TCP port: use 1-65535")
    if args.max_body_mb <= 0:
        raise UserError(f"--max-body-mb {args.max_body_mb} must be positive")
    if args.max_batch < 1 or args.torch_threads < 1:
        raise UserError("--max-batch and --torch-threads must be at least 1")
    server, interface = build(vars(args))
    server.start(interface)


if __name__ == "__main__":
    run_main(main)
