"""`ctsentinel testlog serve`: one log from DIR over HTTP on 127.0.0.1, RFC 6962 and static-ct-api at once.

Everything lives under one base URL, http://127.0.0.1:PORT/testlog/, which is both the RFC 6962 log URL
and the static-ct-api submission and monitoring prefix; the checkpoint origin is therefore
"127.0.0.1:PORT/testlog" (static-ct-api: the submission prefix without scheme and trailing slash).
A sequencer publishes a new tree head every merge delay while entries wait. Faults: see faults.py.

Where populate made CAs in DIR, their repository (CRLs and OCSP, repository.py) is served too, on the
port recorded in DIR/cas/repository.json; `POST <base>/admin/revoke` revokes one of their certificates.
If that port is taken (another copy of the same DIR being served, say), the log is served without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ctsentinel.errors import UserError
from ctsentinel.testlog import hostile, http_rfc6962, http_static, revocations
from ctsentinel.testlog.ca import CAHierarchy
from ctsentinel.testlog.faults import FaultError, parse_admin_request, parse_flag
from ctsentinel.testlog.loglist import LOG_LIST_FILE, log_list, write_log_list
from ctsentinel.testlog.repository import Repository, RepositoryServer
from ctsentinel.testlog.service import SERVICE, ServeConfig, TestLogService
from ctsentinel.testlog.storage import LogStorage, StorageError, now_ms

BASE_PATH = "/testlog/"
JSON = "application/json"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
log = logging.getLogger("ctsentinel.testlog")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_admin(request: web.Request) -> bool:
    return request.path.startswith(BASE_PATH + "admin/")


def _is_log_api(request: web.Request) -> bool:
    """A request to the log's own APIs (what the faults that hit every endpoint apply to)."""
    path = request.path
    return path.startswith(BASE_PATH) and not _is_admin(request) and path != BASE_PATH + LOG_LIST_FILE


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The faults that hit every endpoint alike: slowness, 5xx bursts, rate limits, truncated JSON."""
    if not _is_log_api(request):
        return await handler(request)
    faults = request.app[SERVICE].faults
    moved = hostile.redirect(request, faults)
    if moved is not None:
        return moved
    delay = faults.value("slow")
    if delay:
        await asyncio.sleep(float(delay))
    status = faults.next_server_error()
    if status is not None:
        reason = "Service Unavailable" if status == 503 else "Internal Server Error"
        return web.Response(status=status, text=f"{reason} (injected fault)\n")
    limited, retry_after = faults.rate_limited()
    if limited:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return web.Response(status=429, text="Too Many Requests\n", headers=headers)
    response = await handler(request)
    if "truncated-json" in faults and isinstance(response, web.Response) and response.content_type == JSON:
        body = response.body
        if isinstance(body, bytes) and body:
            response.body = body[: len(body) // 2]
    return response


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(obj, indent=1).encode(), status=status, content_type="application/json"
    )


def _check_local(request: web.Request) -> None:
    if request.remote not in ("127.0.0.1", "::1"):
        raise web.HTTPForbidden(text="admin is only for 127.0.0.1\n")


async def get_faults(request: web.Request) -> web.Response:
    _check_local(request)
    return _json(request.app[SERVICE].faults.to_json())


async def post_faults(request: web.Request) -> web.Response:
    _check_local(request)
    service = request.app[SERVICE]
    try:
        to_set, to_clear = parse_admin_request(await request.json())
        service.apply(to_set, to_clear)
    except ValueError as exc:  # JSONDecodeError, bytes that are not UTF-8, or a FaultError
        if isinstance(exc, FaultError):
            return _json({"error": str(exc)}, status=400)
        return _json({"error": "body is not JSON"}, status=400)
    finally:
        # repository-refused opens or closes a port: that cannot wait for the next request.
        server = request.app.get(REPOSITORY_SERVER)
        if server is not None:
            await server.sync()
    return _json(service.faults.to_json())


def _repository(request: web.Request) -> RepositoryServer:
    _check_local(request)
    server = request.app.get(REPOSITORY_SERVER)
    if server is None:
        raise web.HTTPNotFound(text="this log serves no CAs (populate makes them)\n")
    return server


async def get_revoked(request: web.Request) -> web.Response:
    server = _repository(request)
    return _json({"revoked": [r.to_json() for r in revocations.read(server.repository.book.directory)]})


async def post_revoke(request: web.Request) -> web.Response:
    """Body: one revocation {"ca", "serial", "revoked_at"?, "reason"?} or a list of them (revocations.py)."""
    server = _repository(request)
    known = [ca.id for ca in server.repository.hierarchy]
    try:
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        wanted = [revocations.Revocation.from_json(item, known) for item in items]
    except ValueError as exc:  # JSONDecodeError, bytes that are not UTF-8, or a RevocationRecordError
        if isinstance(exc, revocations.RevocationRecordError):
            return _json({"error": str(exc)}, status=400)
        return _json({"error": "body is not JSON"}, status=400)
    recorded = revocations.record(server.repository.book.directory, wanted)
    for revocation in wanted:
        log.info("revoked: %s serial %x", revocation.ca_id, revocation.serial)
    return _json({"revoked": [r.to_json() for r in recorded]})


async def get_log_list(request: web.Request) -> web.Response:
    """The log's own list, as an operator publishes it (faults may make it select nothing, or nest)."""
    service = request.app[SERVICE]
    document = (service.storage.directory / LOG_LIST_FILE).read_bytes()
    body = hostile.published_log_list(document, service.faults)
    return web.Response(body=body, content_type="application/json")


REPOSITORY_SERVER: web.AppKey[RepositoryServer] = web.AppKey("repository-server", RepositoryServer)


def create_app(service: TestLogService, repository: RepositoryServer | None = None) -> web.Application:
    app = web.Application(middlewares=[fault_middleware])
    app[SERVICE] = service
    if repository is not None:
        app[REPOSITORY_SERVER] = repository
    for method, path, handler in [*http_rfc6962.ROUTES, *http_static.ROUTES]:
        app.router.add_route(method, BASE_PATH + path, handler)
    app.router.add_get(BASE_PATH + LOG_LIST_FILE, get_log_list)
    app.router.add_get(hostile.INTERNAL_PATH, hostile.internal_service)
    app.router.add_get(BASE_PATH + "admin/faults", get_faults)
    app.router.add_post(BASE_PATH + "admin/faults", post_faults)
    app.router.add_get(BASE_PATH + "admin/revoke", get_revoked)
    app.router.add_post(BASE_PATH + "admin/revoke", post_revoke)
    return app


async def _open_repository(directory: Path, service: TestLogService) -> RepositoryServer | None:
    try:
        hierarchy = CAHierarchy.load(directory)
    except ValueError as exc:
        raise UserError(f"{directory}/cas: {exc}") from None
    if hierarchy is None:
        return None
    book = revocations.RevocationBook(directory)
    server = RepositoryServer(Repository(hierarchy, book, service.faults))
    try:
        await server.sync()
    except OSError as exc:
        log.warning("CA repository %s not served: %s (another copy of these CAs served?)", server.url, exc)
        return None
    log.info("CA repository (CRLs, OCSP) at %s", server.url)
    return server


async def _sequencer(service: TestLogService) -> None:
    interval = service.config.merge_delay if service.config.merge_delay > 0 else 1.0
    while True:
        await asyncio.sleep(max(0.02, interval))
        try:
            service.tick()
        except Exception:  # a failed run must not stop the log: the next tick retries
            log.exception("sequencer run failed")


@dataclass
class RunningLog:
    url: str
    directory: Path
    port: int
    close: Callable[[], Awaitable[None]]
    repository_url: str | None = None  # the CAs' CRLs and OCSP, where this process serves them


async def start_log(
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    batch_size: int = 256,
    merge_delay: float = 1.0,
    faults: Sequence[str] = (),
) -> RunningLog:
    """Open (or create) the log in directory and serve it until the returned close() is awaited."""
    if host not in LOOPBACK:
        raise UserError(f"testlog binds only to the loopback interface, not {host!r}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {batch_size}")
    parsed = []
    for flag in faults:
        try:
            parsed.append(parse_flag(flag))
        except FaultError as exc:
            raise UserError(str(exc), exit_code=2) from None
    try:
        storage = LogStorage.open(directory)
    except StorageError as exc:
        raise UserError(str(exc)) from None
    service = TestLogService(storage, ServeConfig(batch_size=batch_size, merge_delay=merge_delay))
    try:
        for name, value in parsed:
            service.set_fault(name, value)
    except FaultError as exc:
        storage.close()
        raise UserError(str(exc), exit_code=2) from None
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1" if host == "localhost" else host, port))
    except OSError as exc:
        sock.close()
        storage.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    authority = f"[{host}]:{port}" if family == socket.AF_INET6 else f"127.0.0.1:{port}"
    url = f"http://{authority}{BASE_PATH}"
    storage.origin = authority + BASE_PATH.rstrip("/")
    write_log_list(
        directory,
        log_list(
            storage.signer.public_key,
            url,
            created_ms=storage.created_ms,
            now_ms=now_ms(),
            merge_delay=merge_delay,
        ),
    )
    try:
        repository = await _open_repository(directory, service)
    except BaseException:
        sock.close()
        storage.close()
        raise
    runner = web.AppRunner(create_app(service, repository), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    sequencer = asyncio.create_task(_sequencer(service))

    async def close() -> None:
        sequencer.cancel()
        await asyncio.gather(sequencer, return_exceptions=True)
        await runner.cleanup()
        if repository is not None:
            await repository.close()
        storage.close()

    repository_url = None if repository is None else repository.url
    return RunningLog(url=url, directory=directory, port=port, close=close, repository_url=repository_url)


def serve_forever(
    directory: Path, *, host: str, port: int, batch_size: int, merge_delay: float, faults: list[str]
) -> None:
    """Serve until SIGINT or SIGTERM; prints "testlog: serving <url> from <dir>" once listening."""
    logging.basicConfig(level=logging.INFO, format="testlog: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = await start_log(
            directory, host=host, port=port, batch_size=batch_size, merge_delay=merge_delay, faults=faults
        )
        print(f"testlog: serving {running.url} from {directory}", flush=True)
        try:
            await stop.wait()
        finally:
            await running.close()

    asyncio.run(main())


class BackgroundLog:
    """A log served from a thread of this process (for tests and the demo); a context manager."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        batch_size: int = 256,
        merge_delay: float = 0.1,
        faults: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self._kwargs = {"port": port, "batch_size": batch_size, "merge_delay": merge_delay, "faults": faults}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.port = 0
        self.repository_url: str | None = None  # the CAs' CRLs and OCSP, when served

    def start(self) -> BackgroundLog:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        if not self.url:
            raise RuntimeError("test log did not start within 30 s")
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            running = await start_log(self.directory, **self._kwargs)  # type: ignore[arg-type]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.url, self.port, self.repository_url = running.url, running.port, running.repository_url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await running.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
            self._thread = None

    def __enter__(self) -> BackgroundLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
