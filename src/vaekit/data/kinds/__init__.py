"""Data kinds: everything vaekit does differently for images, tables and sequences, one part each.

``KINDS.get(spec.kind)`` answers for a :class:`~vaekit.data.spec.DataSpec`. A new kind is a module
here with a :class:`~vaekit.data.kinds.base.DataKind` subclass, and one ``KINDS.add`` line below.
"""

from __future__ import annotations

from vaekit.data.kinds.base import DataKind
from vaekit.data.kinds.image import ImageKind
from vaekit.data.kinds.sequence import SequenceKind
from vaekit.data.kinds.table import TableKind
from vaekit.registry import Registry

KINDS: Registry[DataKind] = Registry("data kind")
KINDS.add("image", ImageKind())
KINDS.add("table", TableKind())
KINDS.add("sequence", SequenceKind())

__all__ = ["KINDS", "DataKind"]
