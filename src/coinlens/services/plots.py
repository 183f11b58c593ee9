"""Report plots: matplotlib on its file-only Agg backend, PNGs that are byte-for-byte the
same for the same figures (no version or date stamped into them), so a rerun of an
evaluation changes a committed plot only when its numbers change."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """`matplotlib.pyplot`, imported on first use (it costs ~0.3 s) with no display needed."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Write `fig` to `path` as PNG without the software tag, then free it."""
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    pyplot().close(fig)
