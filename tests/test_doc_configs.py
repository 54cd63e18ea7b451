"""Configurations shown in the docs are valid for this version."""

import re
import tomllib
from pathlib import Path

from banel_framework.run import plan

DOCS = Path(__file__).parent.parent / "docs"


def test_the_qwen_config_in_hf_models_md_plans():
    text = (DOCS / "hf-models.md").read_text()
    block = re.search(r"```toml\n(# qwen-math.toml.*?)```", text, re.S).group(1)
    data = tomllib.loads(block)
    data["task_options"].pop("data")  # the user's own question file
    cfg = plan([data]).config
    assert cfg.rounds.samples_per_round == 50 and cfg.banel["failure_model"]["name"] == "lora"
    assert cfg.banel["failure_model"]["fit"]["lr"] == 1e-4
