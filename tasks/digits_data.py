"""The 8x8 digits of scikit-learn: quantised pixels as tokens, a codec, the classifier oracle."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from banel_framework.interfaces import Codec, RewardOracle
from banel_framework.samples import Samples

PIXELS = 64
SIDE = 8
RAMP = " .:-=+*#%@"


def quantise(images: np.ndarray, levels: int) -> np.ndarray:
    """Intensities 0..16 to integer levels 0..levels-1 (nearest level)."""
    return np.rint(np.asarray(images, dtype=np.float64) * (levels - 1) / 16).astype(np.int64)


def dequantise(tokens: np.ndarray, levels: int) -> np.ndarray:
    """Levels back to the 0..16 intensity scale the classifier reads."""
    return np.asarray(tokens, dtype=np.float64) * 16 / (levels - 1)


@cache
def load(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 bundled digits as quantised pixel rows [N, 64] and their labels [N]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return quantise(data.data, levels), data.target.astype(np.int64)


def well_formed(samples: Samples, levels: int) -> torch.Tensor:
    """True where a sample is exactly 64 pixel tokens followed by EOS."""
    toks = samples.tokens
    ok = samples.lengths == PIXELS + 1
    if toks.shape[1] < PIXELS + 1:
        return torch.zeros(len(samples), dtype=torch.bool)
    return ok & (toks[:, :PIXELS] < levels).all(1) & (toks[:, PIXELS] == levels)


def images(samples: Samples, levels: int) -> np.ndarray:
    """Pixel levels [B, 8, 8]; malformed samples come out as -1 everywhere."""
    out = np.full((len(samples), SIDE, SIDE), -1, dtype=np.int64)
    ok = well_formed(samples, levels)
    if bool(ok.any()):
        out[ok.numpy()] = samples.tokens[ok, :PIXELS].numpy().reshape(-1, SIDE, SIDE)
    return out


class DigitCodec(Codec):
    """A sample reads as 8 rows of 8 characters from dark to bright, joined by '/'."""

    def __init__(self, levels: int):
        self.levels = levels
        step = (len(RAMP) - 1) / max(1, levels - 1)
        self.chars = [RAMP[round(i * step)] for i in range(levels)]

    def decode(self, tokens: list[int]) -> str:
        px = tokens[:-1] if tokens and tokens[-1] == self.levels else tokens
        if len(px) != PIXELS or any(t >= self.levels for t in px):
            return "malformed:" + ",".join(map(str, tokens))
        rows = ["".join(self.chars[t] for t in px[i:i + SIDE]) for i in range(0, PIXELS, SIDE)]
        return "/".join(rows)

    def encode(self, text: str) -> list[int]:
        index = {c: i for i, c in enumerate(self.chars)}
        return [index[c] for c in text.replace("/", "")] + [self.levels]


@dataclass
class Classifier:
    """An RBF support-vector classifier, isotonic-calibrated, and its held-out accuracy."""

    model: object
    levels: int
    held_out_accuracy: float
    n_train: int
    n_test: int

    def proba(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities [B, 10] of pixel levels [B, 64]."""
        return self.model.predict_proba(dequantise(pixels, self.levels))


@cache
def classifier(levels: int, test_share: float = 0.25, seed: int = 0) -> Classifier:
    """Trained on a stratified share of all ten classes; accuracy measured on the rest."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    x, y = load(levels)
    x_tr, x_te, y_tr, y_te = train_test_split(dequantise(x, levels), y, test_size=test_share,
                                              stratify=y, random_state=seed)
    model = CalibratedClassifierCV(SVC(gamma=0.001, C=10.0), method="isotonic", ensemble=False)
    model.fit(x_tr, y_tr)
    acc = float((model.predict(x_te) == y_te).mean())
    return Classifier(model, levels, acc, len(y_tr), len(y_te))


class DigitOracle(RewardOracle):
    """r(x) = 1 when x is a well-formed image the classifier calls `target` with p >= threshold."""

    batch_size = 1 << 14

    def __init__(self, clf: Classifier, target: int, threshold: float):
        self.clf, self.target, self.threshold = clf, target, threshold

    def target_proba(self, samples: Samples) -> np.ndarray:
        """p(target | x) for each sample; 0 for malformed ones."""
        ok = well_formed(samples, self.clf.levels).numpy()
        out = np.zeros(len(samples))
        if ok.any():
            px = samples.tokens[torch.from_numpy(ok), :PIXELS].numpy()
            out[ok] = self.clf.proba(px)[:, self.target]
        return out

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        return [float(p >= self.threshold) for p in self.target_proba(samples)]
