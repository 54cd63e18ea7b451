"""Fixtures for the Hugging Face tests: a tiny local GPT-2 and one torch thread per test."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

import torch
from banel_plugins.hf_tiny import TEXTS, tiny_causal_lm
from banel_tasks.math_qa import SAMPLE_DATA

__all__ = ["one_thread", "tiny_lm"]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A random-weight GPT-2 and a BPE tokenizer trained here on the bundled questions."""
    rows = [json.loads(line) for line in SAMPLE_DATA.read_text().splitlines()]
    texts = TEXTS + [r["question"] for r in rows] + [r["answer"] for r in rows]
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), texts=texts)


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run fastest on one thread on a shared machine; restore the setting after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
