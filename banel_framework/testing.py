"""Contract checks for plugin authors: call them from your own pytest tests."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import tomllib
import torch

from .config import FitSettings
from .interfaces import Generator
from .samples import Samples


def check_generator(gen: Generator, *, eos_id: int | None = None, max_len: int | None = None,
                    n: int = 256, atol: float = 1e-4) -> None:
    """Assert what BaNEL relies on: sampled log-probs equal exact rescoring, EOS closes each
    sequence, seeds reproduce, clone is independent, save/load round-trips, fit learns."""
    s = gen.sample(n, seed=0)
    assert len(s) == n and s.log_prob is not None, "sample(n) must return n samples with log_prob"
    again = gen.sample(n, seed=0)
    assert torch.equal(s.tokens, again.tokens), "the same seed must give the same samples"
    scored = gen.log_prob(s)
    gap = float((s.log_prob - scored).abs().max())
    assert gap <= atol, f"sampled log-probs differ from log_prob() by {gap:.3g} (> {atol})"
    assert (s.lengths >= 1).all(), "every sample has at least one token"
    if max_len is not None:
        assert (s.lengths <= max_len).all(), f"a sample is longer than max_len={max_len}"
    if eos_id is not None:
        ended = s.lengths < (max_len if max_len is not None else s.tokens.shape[1] + 1)
        last = s.tokens[ended, s.lengths[ended] - 1]
        assert (last == eos_id).all(), "a sample shorter than max_len must end with EOS"
        for row, length in zip(s.tokens.tolist(), s.lengths.tolist()):
            assert eos_id not in row[:length - 1], "EOS may only be a sample's last token"
    copy = gen.clone()
    assert torch.allclose(copy.log_prob(s), scored, atol=atol), "clone() must copy the weights"
    data = Samples.from_sequences([s.sequences()[0]] * 64)
    before = float(copy.log_prob(data.select([0]))[0])
    copy.fit(data, FitSettings(epochs=3, lr=1e-2, batch_size=16), seed=0)
    after = float(copy.log_prob(data.select([0]))[0])
    assert after > before, f"fit() did not raise log p of its data ({before:.3g} -> {after:.3g})"
    assert torch.allclose(gen.log_prob(s), scored, atol=atol), "fitting a clone changed the original"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.pt"
        copy.save(path)
        loaded = gen.fresh()
        loaded.load(path)
        assert torch.allclose(loaded.log_prob(data.select([0])), copy.log_prob(data.select([0])),
                              atol=atol), "load(save()) must give the same log-probs"


def install_on_path(dest: Path, name: str, version: str, entry_points: dict[str, str],
                    sources: list[Path]) -> Path:
    """Lay out a distribution the way pip would (code plus a dist-info with entry_points.txt)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        target = dest / src.name
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy(src, target)
    info = dest / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[banel]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return dest


def code_blocks(markdown: Path, lang: str = "python") -> list[str]:
    """The fenced code blocks of one language in a Markdown page, in order."""
    return re.findall(rf"```{lang}\n(.*?)```", markdown.read_text(), re.DOTALL)


def install_page(markdown: Path, dest: Path, package: str, marker: str,
                 meta: tuple[str, str, dict[str, str]] | None = None) -> Path:
    """Install the package a docs page shows: its python block holding `marker` becomes
    `package/__init__.py`; name, version and entry points come from the page's first toml
    block (a pyproject.toml) unless `meta` gives them. Returns the directory to put on sys.path."""
    if meta is None:
        project = tomllib.loads(code_blocks(markdown, "toml")[0])["project"]
        meta = (project["name"], project["version"], project["entry-points"]["banel"])
    src = dest / "src" / package
    src.mkdir(parents=True, exist_ok=True)
    (src / "__init__.py").write_text(next(b for b in code_blocks(markdown) if marker in b))
    return install_on_path(dest / "site", *meta, [src])
