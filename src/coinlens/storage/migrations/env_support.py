"""The full table metadata that migrations must match (every table module imported)."""

from __future__ import annotations

import sqlalchemy as sa


def all_metadata() -> sa.MetaData:
    """Import every table module and return the shared metadata."""
    from coinlens.storage import (  # noqa: F401 - importing registers the tables
        tables_alerts,
        tables_analytics,
        tables_forecasts,
        tables_grades,
        tables_keys,
    )
    from coinlens.storage.tables import metadata

    return metadata
