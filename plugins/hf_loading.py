"""Loading a Hugging Face causal LM and its tokenizer: local directories, hub names, offline mode."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch

from banel_framework.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_TRUE = ("1", "true", "yes", "on")


def require(package: str, what: str) -> Any:
    """Import an optional dependency or fail with the install command."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ConfigError(f"{what} needs the '{package}' package: "
                          "pip install 'banel-framework[hf]'") from None


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE asks for no network (read at call time)."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_path(name: str) -> bool:
    """A name that can only be a directory (hub names are 'org/model')."""
    return (name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def _quiet(transformers: Any) -> None:
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def dtype_kwarg(transformers: Any) -> str:
    """The from_pretrained keyword for the weights' dtype ('dtype' from 4.56 on)."""
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_pretrained(opts: Any) -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory or a hub name, honouring offline settings."""
    transformers = require("transformers", "the hf-causal-lm generator")
    _quiet(transformers)
    src = opts.model
    local = Path(src).expanduser()
    if local.is_dir():
        src = str(local)
    elif looks_like_path(src):
        raise ConfigError(f"generator.options.model: no such directory: {opts.model}")
    offline = opts.local_files_only or hub_offline()
    common = {"revision": opts.revision, "trust_remote_code": opts.trust_remote_code,
              "local_files_only": offline}
    dtype = "auto" if opts.dtype == "auto" else DTYPES[opts.dtype]
    extra: dict[str, Any] = {dtype_kwarg(transformers): dtype}
    if opts.attn_implementation:
        extra["attn_implementation"] = opts.attn_implementation
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(opts.tokenizer or src, **common)
        model = transformers.AutoModelForCausalLM.from_pretrained(src, **common, **extra)
    except (OSError, ValueError, KeyError) as exc:
        if offline and not local.is_dir():
            raise ConfigError(
                f"generator.options.model: cannot load {opts.model!r} offline "
                "(HF_HUB_OFFLINE=1 or local_files_only): it is not a local directory and not in "
                "the Hugging Face cache; download it once with network access, or give a "
                "local directory") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"generator.options.model: cannot load {opts.model!r}: {first}") from None
    model.eval()
    return model, tokenizer


def prompt_ids(tokenizer: Any, prompt: str, chat: bool, model_name: str) -> list[int]:
    """Token ids of the prompt every completion continues (chat-formatted when asked)."""
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(f"generator.options.chat: the tokenizer of {model_name!r} has no "
                              "chat template; set chat=false")
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"] if prompt else []
    if not ids:  # an unconditional model still needs a first position: BOS (or EOS, as GPT-2)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ConfigError("generator.options.prompt is empty and the tokenizer has no BOS or "
                              "EOS token to start from")
        ids = [start]
    return list(ids)


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends a completion (tokenizer, model config and generation config)."""
    found: set[int] = set()
    sources = [tokenizer.eos_token_id, getattr(model.config, "eos_token_id", None),
               getattr(getattr(model, "generation_config", None), "eos_token_id", None)]
    for value in sources:
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, (list, tuple)):
            found.update(int(v) for v in value)
    if not found:
        raise ConfigError("generator.options.model: the tokenizer and model define no EOS token")
    return sorted(found)
