"""What the asset catalog shows about every asset besides its data: who owns it and its layer.

Applied once, to everything the Definitions hold (:func:`catalogued`), so an asset added later gets
both without repeating them.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

# Asset groups, one per layer of the architecture: where the data comes in (the topics), where the stream
# keeps it (the sink tables, PostgreSQL), what the batch analytics make of it.
INGESTION = "ingestion"
STORAGE = "storage"
ANALYTICS = "analytics"

# Every asset is the data platform team's: one owner, so the catalog's owner filter finds all of them.
OWNERS = ["team:data-platform"]


def layer_tags(layer: str) -> dict[str, str]:
    """The ``layer`` tag: ingestion, storage or analytics, the asset's group (above), for
    the catalog's tag filter and asset selections (``tag:layer=storage``)."""
    return {"layer": layer}


def _catalogued(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.merge_attributes(owners=[o for o in OWNERS if o not in spec.owners],
                                 tags=layer_tags(spec.group_name) if spec.group_name else {})


def catalogued(assets: Sequence) -> Sequence:
    """``assets`` (specs and definitions) with the owner and their layer's tag on every asset."""
    return dg.map_asset_specs(_catalogued, assets)
