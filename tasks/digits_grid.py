"""Grids of 8x8 digit images as PNG files, with optional captions under each image."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def mosaic(imgs: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Tile images [N, 8, 8] into one array, `cols` per row, NaN between them."""
    n = len(imgs)
    rows = max(1, math.ceil(n / cols))
    side = imgs.shape[1] if n else 8
    out = np.full((rows * (side + pad) - pad, cols * (side + pad) - pad), np.nan)
    for i, img in enumerate(imgs):
        r, c = divmod(i, cols)
        y, x = r * (side + pad), c * (side + pad)
        out[y:y + side, x:x + side] = img
    return out


def colormap() -> matplotlib.colors.Colormap:
    """Grey levels; gaps between images white; malformed samples (-1) red."""
    cmap = plt.get_cmap("gray").copy()
    cmap.set_bad("white")
    cmap.set_under("tab:red")
    return cmap


def save_grid(imgs: np.ndarray, levels: int, path: Path, title: str, cols: int = 16,
              captions: list[str] | None = None, empty_note: str = "none") -> Path:
    """One figure of images (bright strokes on dark, malformed ones red), captioned when asked."""
    imgs = np.asarray(imgs, dtype=np.float64)
    n = len(imgs)
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, math.ceil(n / cols))
    cell = 0.55 if captions is None else 0.75
    fig, ax = plt.subplots(figsize=(max(3.0, cols * 0.55 + 0.4), rows * cell + 0.7))
    if n:
        ax.imshow(mosaic(imgs, cols), cmap=colormap(), vmin=0, vmax=levels - 1,
                  interpolation="nearest")
        for i, text in enumerate(captions or []):
            r, c = divmod(i, cols)
            ax.text(c * 9 + 3.5, r * 9 + 8.2, text, ha="center", va="top", fontsize=5)
    else:
        ax.text(0.5, 0.5, empty_note, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_rows(rows: list[tuple[str, np.ndarray]], levels: int, path: Path, title: str,
              cols: int = 16) -> Path:
    """One labelled row of images per entry, e.g. posterior samples after each round."""
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 1, figsize=(cols * 0.55 + 1.4, n * 0.75 + 0.7), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows):
        if len(imgs):
            ax.imshow(mosaic(np.asarray(imgs, dtype=np.float64)[:cols], cols), cmap=colormap(),
                      vmin=0, vmax=levels - 1, interpolation="nearest")
        else:
            ax.text(0.5, 0.5, "no samples accepted", ha="center", va="center",
                    transform=ax.transAxes, fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
