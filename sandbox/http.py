"""A small threaded HTTPS server framework shared by both CRM emulators.

Why not a web framework: the emulators must control every byte the real APIs send (exact status
codes, header names such as ``Sforce-Limit-Info``, trailing-slash paths, CSV bodies, dropped
connections for fault injection). The standard library's ``ThreadingHTTPServer`` with HTTP/1.1
keep-alive gives us that with no dependency, and is fast enough for the rates the real APIs allow.

Every request passes through the same pipeline: control endpoints (``/__sandbox/…``) first, then
fault injection, then the emulator's own routes; every API response is written to the request
ledger so that tests and benchmarks count API calls exactly.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.state import SandboxState


@dataclass
class Request:
    method: str
    path: str  # without query string, percent-decoded
    raw_path: str  # as sent, with query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # route captures

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def arg_list(self, name: str) -> list[str]:
        """A list parameter sent repeated (``a=x&a=y``, HubSpot client) or comma-joined."""
        out: list[str] = []
        for v in self.query.get(name, []):
            out.extend(p for p in v.split(",") if p)
        return out

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", self.content_type or "application/json;charset=UTF-8"
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.content_type or "text/plain;charset=UTF-8"
        return (
            json.dumps(self.body, separators=(",", ":")).encode("utf-8"),
            self.content_type or "application/json;charset=UTF-8",
        )


class DropConnection(Exception):
    """Raised by a fault to close the socket without answering (connection reset)."""


class AnswerLost(DropConnection):
    """Raised by a ``lost_answer`` fault: the request *was* executed, its answer never sent.

    What a client sees when its read timeout fires (or a proxy drops the connection) after the
    CRM committed a write: the case that makes blind retries write twice.
    """

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status


Handler = Callable[[Request], Response]


class Router:
    """Method + regex routing; patterns use ``{name}`` for one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method.upper(), re.compile(regex), handler))

    def route(self, request: Request) -> Response | None:
        """The matching handler's response; None if no path matches; 405 if only the method is off."""
        path_matched = False
        for method, regex, handler in self._routes:
            m = regex.match(request.path)
            if not m:
                continue
            path_matched = True
            if method != request.method:
                continue
            request.params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
            return handler(request)
        if path_matched:
            return Response(405, {"message": f"Method {request.method} not allowed"})
        return None


class EmulatorApp:
    """Base class of an emulated CRM API. Subclasses fill ``self.router`` and the hooks."""

    crm: str = ""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.router = Router()
        self.base_url = ""  # set by the server once bound

    def handle(self, request: Request) -> Response:
        """Authenticate, route, and decorate the response (limit headers). Override hooks below."""
        response = self.router.route(request)
        if response is None:
            return self.not_found(request)
        return response

    def not_found(self, request: Request) -> Response:
        return Response(404, {"message": f"No such resource: {request.path}"})

    def fault_response(
        self, kind: str, params: dict[str, Any], request: Request
    ) -> Response | None:
        """Render a CRM-specific fault (rate limit body, row lock, expired session…)."""
        return None

    def decorate(self, request: Request, response: Response) -> None:
        """Add headers every response of this CRM carries (limits, Date…)."""


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


@dataclass
class FaultRule:
    """One injected fault.

    kind: ``status`` (answer ``status`` with ``body``), ``reset`` (drop the connection),
    ``hang`` (sleep ``seconds`` then drop), ``lost_answer`` (execute the request, sleep
    ``seconds``, then drop the connection: the client never learns it succeeded), ``latency`` (sleep ``seconds`` then answer normally),
    or a CRM-specific kind the emulator renders: ``rate_limit`` (``policy``), ``server_error``,
    ``expired_token``, ``row_lock``, ``partial`` (207 / per-record failures for ``ids``),
    ``quota_exhausted``.
    Which requests: ``method`` and ``path`` (regex, searched) filters; then ``nth`` (the Nth
    matching request, 1-based), or ``rate`` (probability, deterministic by ``seed``), or every
    matching request; ``times`` bounds how often it fires (None: unbounded).
    """

    kind: str
    method: str | None = None
    path: str | None = None
    nth: int | None = None
    rate: float | None = None
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    seen: int = 0
    fired: int = 0

    def matches(self, request: Request) -> bool:
        if self.method and self.method.upper() != request.method:
            return False
        return not (self.path and not re.search(self.path, request.path))

    def should_fire(self) -> bool:
        self.seen += 1
        if self.times is not None and self.fired >= self.times:
            return False
        if self.nth is not None:
            fire = self.seen == self.nth
        elif self.rate is not None:
            # deterministic pseudo-random: same sequence for the same seed
            x = (self.seen * 2654435761 + self.seed * 40503) % 2**32
            fire = x / 2**32 < self.rate
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "nth": self.nth,
            "rate": self.rate,
            "times": self.times,
            "params": self.params,
            "seen": self.seen,
            "fired": self.fired,
        }


class FaultInjector:
    """The active fault rules of one emulator (in memory; set through the control API)."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_dict() for r in self._rules]

    def pick(self, request: Request) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(request) and rule.should_fire():
                    return rule
        return None


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------

ControlHandler = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    # One buffered write per response and no Nagle: otherwise headers and body leave as two
    # small segments and the client's delayed ACK adds ~40 ms to every request.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the ledger is the log

    def _dispatch(self) -> None:
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(self.path)
        request = Request(
            method=self.command.upper(),
            path=urllib.parse.unquote(parsed.path),
            raw_path=self.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if request.path.startswith("/__sandbox/"):
            response = srv.control(request)
            self._write(response)
            return
        try:
            response = srv.serve(request)
        except DropConnection as exc:
            if isinstance(exc, AnswerLost):  # executed: the ledger shows it, with its fate
                srv.app.state.log_request(
                    srv.app.crm, request.method, request.raw_path, exc.status, "answer lost"
                )
            else:
                srv.app.state.log_request(srv.app.crm, request.method, request.raw_path, 0, "reset")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception as exc:  # an emulator bug must not look like a hang
            response = Response(
                500, [{"message": f"sandbox error: {exc!r}", "errorCode": "UNKNOWN_EXCEPTION"}]
            )
        srv.app.state.log_request(srv.app.crm, request.method, request.raw_path, response.status)
        self._write(response)

    def _write(self, response: Response) -> None:
        payload, ctype = response.encode()
        headers = {k.lower(): (k, v) for k, v in response.headers.items()}
        if "date" in headers:
            # The emulator sends its own Date (sandbox clock); don't add the real-time one too.
            self.send_response_only(response.status)
            self.send_header("Server", self.version_string())
        else:
            self.send_response(response.status)
        if "content-type" not in headers and (payload or response.status != 204):
            self.send_header("Content-Type", ctype)
        for name, value in headers.values():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and response.status != 204 and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _dispatch


class EmulatorServer(ThreadingHTTPServer):
    """One emulated CRM on one TLS port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, app: EmulatorApp, host: str, port: int, cert: Path, key: Path, control: ControlHandler
    ) -> None:
        super().__init__((host, port), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.app = app
        self.faults = FaultInjector()
        self._control = control
        self.port = self.server_address[1]
        app.base_url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def serve(self, request: Request) -> Response:
        rule = self.faults.pick(request)
        if rule is not None:
            if rule.kind == "reset":
                raise DropConnection()
            if rule.kind == "hang":
                time.sleep(float(rule.params.get("seconds", 30)))
                raise DropConnection()
            if rule.kind == "lost_answer":
                applied = self.app.handle(request)
                time.sleep(float(rule.params.get("seconds", 0)))
                raise AnswerLost(applied.status)
            if rule.kind == "latency":
                time.sleep(float(rule.params.get("seconds", 0.5)))
            elif rule.kind == "status":
                response = Response(int(rule.params.get("status", 500)), rule.params.get("body"))
                self.app.decorate(request, response)
                return response
            else:
                rendered = self.app.fault_response(rule.kind, rule.params, request)
                if rendered is not None:
                    self.app.decorate(request, rendered)
                    return rendered
        response = self.app.handle(request)
        self.app.decorate(request, response)
        return response

    def control(self, request: Request) -> Response:
        return self._control(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer was written (its own timeout, a killed step
        process) is the client's business, as at a real API: no traceback on the sandbox's
        console. Anything else is an emulator bug and is printed as before."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return
        super().handle_error(request, client_address)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one poll interval
            name=f"sandbox-{self.app.crm}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
