"""The latent explorer in the browser (``vaekit explore``; needs the ``[web]`` extra).

:class:`~vaekit.web.explorer.Explorer` does the work (no HTTP); :func:`~vaekit.web.app.create_app`
serves it as a JSON API and a page of static files shipped in the package (no CDN, no build step);
:func:`~vaekit.web.server.serve` runs that under uvicorn with request deadlines and a connection cap.
"""

from __future__ import annotations

from vaekit.errors import ConfigError


def create_app(run, inputs=None, api_only: bool = False, seed: int = 0):
    """A FastAPI app exploring ``run`` (a :class:`~vaekit.Run`) over ``inputs`` (default its
    held-out split)."""
    try:
        from vaekit.web.app import create_app as build
    except ImportError as error:
        raise ConfigError(f"the explorer needs the web extra ({error.name} is missing): "
                          "pip install 'vaekit[web]'") from None
    from vaekit.web.explorer import Explorer

    return build(Explorer(run, run.inputs() if inputs is None else inputs, seed=seed), api_only=api_only)
