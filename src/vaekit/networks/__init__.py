"""Encoders and decoders built from the data's shape, registered by name in NETWORKS.

A data kind names its entry (:meth:`DataKind.network <vaekit.data.kinds.base.DataKind.network>`);
a new network is one module here with one ``@NETWORKS.register`` builder, imported below.
"""

from vaekit.networks import image, ldm_vae, mlp, sequence, table  # noqa: F401  (registers)
from vaekit.networks.blocks import NETWORKS, NetworkBuilder

__all__ = ["NETWORKS", "NetworkBuilder"]
