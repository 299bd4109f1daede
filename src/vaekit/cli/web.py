"""vaekit explore: the latent explorer in the browser (the ``[web]`` extra)."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import socket
from pathlib import Path

import typer

from vaekit.cli.common import Device, example, load_inputs, load_run

log = logging.getLogger("vaekit")


def _check_address(host: str, port: int) -> None:
    """Fail now, in one line, if the address cannot be bound (rather than after the model loads)."""
    from vaekit.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ConfigError(f"--host {host!r}: not an address this machine can bind") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise ConfigError(f"--port {port} on {host}: cannot listen there ({error.strerror})") from None
    try:
        loopback = ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        log.warning("explore: listening on %s, reachable from other machines; the explorer has no login", host)


@example("vaekit explore runs/fm --port 8000")
def explore(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    data: str = typer.Option(None, "--data", help="Inputs for the map and the neighbours (dataset name or path); "
                             "default the run's held-out split."),
    api_only: bool = typer.Option(False, "--api-only", help="Serve the JSON API without the page."),
    device: Device = typer.Option(Device.auto, "--device", help="Device to run the model on."),
    max_connections: int = typer.Option(100, "--max-connections", min=1, max=10_000,
                                        help="Connections open at once. Above it a request that has arrived "
                                             "closes the connection that has waited longest for one, or, when "
                                             "all are busy, is answered 503 (Service Unavailable)."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, max=3600.0,
                                  help="Seconds a client has to send each request, header and body, once "
                                       "connected; a slower one is answered 408 and disconnected."),
) -> None:
    """Explore a run's latent space in the browser: samples, sliders, interpolation, a map, uploads."""
    from vaekit.errors import ConfigError
    from vaekit.training.distributed import select_device
    from vaekit.web import create_app

    if importlib.util.find_spec("uvicorn") is None:  # said now, not after the model loads
        raise ConfigError("the explorer needs the web extra (uvicorn is missing): pip install 'vaekit[web]'")
    _check_address(host, port)
    run = load_run(run_dir, device=str(select_device(device.value)))
    app = create_app(run, load_inputs(run, data), api_only=api_only)
    app.state.explorer.info()  # codes, summary and threshold now, not on the first page load
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"vaekit explorer: http://{shown}:{port}/{'api/openapi.json' if api_only else ''}  (Ctrl-C stops it)")
    from vaekit.web.server import serve

    serve(app, host, port, max_connections=max_connections, timeout=timeout)
