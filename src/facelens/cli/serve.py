"""``facelens serve``: the REST API and web page on uvicorn."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from facelens.cli.common import friendly_errors
from facelens.cli.output import console
from facelens.service.keys import KeyStore
from facelens.service.settings import (
    BODY_RATE_GRACE,
    SETTINGS_ENV,
    ServiceSettings,
    worker_threads,
)
from facelens.service.state import StateDB

__all__ = ["command"]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (each loads the models; they share the gallery and the job queue).",
)
@click.option(
    "--service-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State folder (keys, audit, jobs); default: <gallery>.service beside the gallery.",
)
@click.option("--max-request-mb", type=click.FloatRange(0.01), default=32.0, show_default=True)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.01),
    default=512.0,
    show_default=True,
    help="Largest job upload (videos, zips).",
)
@click.option("--max-pixels", type=click.IntRange(1), default=40_000_000, show_default=True)
@click.option("--max-video-seconds", type=click.FloatRange(1), default=600.0, show_default=True)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.1),
    default=30.0,
    show_default=True,
    help="Seconds a request body may stall before the answer is 408.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a connection has to send a complete request line and headers (408, closed).",
)
@click.option(
    "--min-body-rate",
    type=click.FloatRange(0),
    default=1024.0,
    show_default=True,
    help=f"Slowest average request body in bytes/s after the first {BODY_RATE_GRACE:g} s "
    "(408); 0: no minimum.",
)
@click.option(
    "--max-connections-per-client",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Open connections one client address may hold per worker process; "
    "requests on more are answered 429.",
)
@click.option(
    "--max-requests-in-progress",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Requests handled at once per worker process; more are answered 503.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Inference threads per model in each worker (default: $FACELENS_THREADS, else the "
    "cores divided among all analyses that run at once: workers x analysis slots).",
)
@click.option(
    "--analysis-slots",
    type=click.IntRange(1),
    default=ServiceSettings.analysis_slots,
    show_default=True,
    help="Photos analysed at once in each worker; more requests wait for a free slot.",
)
@click.option(
    "--library-root",
    "library_roots",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A server folder that library scans may read (repeatable); no other folder is read.",
)
@click.option(
    "--library",
    "library",
    type=click.Path(dir_okay=False),
    default=None,
    help="A library file (default: <gallery>.library.db beside the gallery, or "
    "$FACELENS_LIBRARY; for a PostgreSQL gallery, the tables in its database).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    service_dir: str | None,
    max_request_mb: float,
    max_upload_mb: float,
    max_pixels: int,
    max_video_seconds: float,
    body_timeout: float,
    header_timeout: float,
    min_body_rate: float,
    max_connections_per_client: int,
    max_requests_in_progress: int,
    threads: int | None,
    analysis_slots: int,
    library_roots: tuple[str, ...],
    library: str | None,
    log_level: str,
) -> None:
    """Serve the REST API (docs at /docs) and the web page (/web/) until stopped.

    Every request needs an API key: create one first with `facelens keys create`.
    """
    import uvicorn

    from facelens.service.protocol import PROTOCOL_PATH

    obj = ctx.ensure_object(dict)
    for root in library_roots:
        if not Path(root).expanduser().is_dir():
            raise click.BadParameter(f"{root}: no such folder", param_hint="--library-root")
    settings = ServiceSettings(
        gallery=obj.get("gallery"),
        service_dir=service_dir,
        embedder=obj.get("embedder"),
        max_request_bytes=int(max_request_mb * 1024 * 1024),
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_pixels=max_pixels,
        max_video_seconds=max_video_seconds,
        body_timeout=body_timeout,
        header_timeout=header_timeout,
        min_body_rate=min_body_rate,
        max_connections_per_client=max_connections_per_client,
        max_requests_in_progress=max_requests_in_progress,
        analysis_slots=analysis_slots,
        threads=threads or worker_threads(workers, analysis_slots),
        max_side=obj.get("max_side"),
        key_file=obj.get("key_file"),
        library=library,
        library_roots=[str(Path(root).expanduser().absolute()) for root in library_roots],
    )
    # refused in one line before anything is made or announced
    _check_port_free(host, port)
    _check_gallery_opens(settings)
    os.environ[SETTINGS_ENV] = settings.to_json()  # worker processes read it
    state = StateDB(settings.state_db)
    try:
        if not KeyStore(state).list_keys(include_revoked=False):
            console.print(
                "[yellow]no API key yet: every request will be refused until an admin runs "
                "`facelens keys create --role admin`[/yellow]"
            )
    finally:
        state.close()
    console.print(
        f"facelens serving gallery state in {settings.state_dir} on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs, web page at /web/"
    )
    uvicorn.run(
        "facelens.service.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        http=PROTOCOL_PATH,  # uvicorn's h11 with a header timeout and per-client cap
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        proxy_headers=False,
        server_header=False,
    )


def _check_gallery_opens(settings: ServiceSettings) -> None:
    """Open the gallery as the server will (its key, its model) and close it again: a text
    file, another database or an encrypted gallery without its key is refused now, as
    every other command refuses it (a :class:`~facelens.errors.FaceLensError`), rather than
    by a worker's traceback after the server said it was serving."""
    from facelens.gallery import open_gallery, resolve_gallery, stored_model_id
    from facelens.models import registry

    model = (
        settings.embedder
        or stored_model_id(resolve_gallery(settings.gallery))
        or registry.DEFAULT_EMBEDDER
    )
    open_gallery(settings.gallery, model, key_file=settings.key_file).close()


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on (or a host this machine does not have) in
    one line, before the server announces itself."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        reason = error.strerror or str(error)
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({reason}); choose another with --port or --host"
        ) from None
