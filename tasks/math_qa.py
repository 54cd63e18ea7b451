"""math-qa: one GSM8K-format question; reward 1 when a completion's final number is the answer."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from banel_framework.errors import BanelError, ConfigError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Codec, Generator, Options, RewardOracle, Task, TaskContext
from banel_framework.samples import Samples

DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
SAMPLE_DATA = Path(__file__).parent / "data" / "gsm8k_sample.jsonl"
TEMPLATE = ("Solve the problem step by step. On the last line write '#### ' followed by the final "
            "answer as a number.\n\nQuestion: {question}\nAnswer:")
# 1,234.5 (thousands separators) or 1234.5 or -3; a leading $ is dropped before matching
NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def to_decimal(text: str) -> Decimal | None:
    """A number as written ('3,185', '$12', '1.50') as a Decimal, or None."""
    try:
        return Decimal(text.replace(",", "").replace("$", ""))
    except InvalidOperation:
        return None


def final_number(text: str) -> Decimal | None:
    """The final answer of a completion: after the last '####', else the last \\boxed{}, else the
    last number in the text; None when there is none."""
    text = text.replace("$", "")
    if "####" in text:
        found = NUMBER.findall(text.rsplit("####", 1)[1])
        return to_decimal(found[0]) if found else None
    boxed = BOXED.findall(text)
    if boxed:
        found = NUMBER.findall(boxed[-1])
        return to_decimal(found[0]) if found else None
    found = NUMBER.findall(text)
    return to_decimal(found[-1]) if found else None


def reference_answer(answer: str) -> Decimal | None:
    """The reference of a GSM8K answer field: the number after '####'."""
    if "####" not in answer:
        return None
    found = NUMBER.findall(answer.replace("$", "").rsplit("####", 1)[1])
    return to_decimal(found[0]) if found else None


@lru_cache(maxsize=8)
def load_questions(path: str) -> tuple[tuple[str, str, Decimal], ...]:
    """(question, answer text, reference) for each line of a GSM8K-format JSONL file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such file: {path}")
    out = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                or not isinstance(row.get("answer"), str):
            raise ValueError(f"{path}:{n}: needs string fields 'question' and 'answer'")
        ref = reference_answer(row["answer"])
        if ref is None:
            raise ValueError(f"{path}:{n}: the answer has no number after '####'")
        out.append((row["question"], row["answer"], ref))
    if not out:
        raise ValueError(f"{path} holds no questions")
    return tuple(out)


class MathQAOptions(Options):
    """Options of the math-qa task."""

    data: str | None = Field(None, description="GSM8K-format JSONL (question, answer with "
                                               "'#### N'); None: the bundled 12-question sample.")
    question: int = Field(0, ge=0, description="Index of the question (0-based line) to solve.")
    template: str = Field(TEMPLATE, description="Prompt; {question} is replaced by the question.")
    max_new_tokens: int = Field(256, ge=1, description="Longest completion (cut without EOS).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (sets banel.temperature).")

    @model_validator(mode="after")
    def _check(self) -> MathQAOptions:
        try:
            self.template.format(question="")
        except (KeyError, IndexError, ValueError):
            raise ValueError("template: use {question} only (write other braces as {{ }})") from None
        if "{question}" not in self.template:
            raise ValueError("template must contain {question}")
        if self.data is not None:
            self.data = str(Path(self.data).expanduser().resolve())
        items = load_questions(self.data or str(SAMPLE_DATA))
        if self.question >= len(items):
            raise ValueError(f"question {self.question} is out of range: the data holds "
                             f"{len(items)} questions (0..{len(items) - 1})")
        return self


class CompletionCodec(Codec):
    """Completions read as text through the prior's tokenizer (known once the prior is built)."""

    def __init__(self, task: MathQA):
        self.task = task

    @property
    def tokenizer(self) -> Any:
        if self.task.tokenizer is None:
            raise BanelError("math-qa decodes completions with the generator's tokenizer; "
                             "build the prior first")
        return self.task.tokenizer

    def decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


class AnswerOracle(RewardOracle):
    """r(x) = 1 when the completion's final number equals the reference answer."""

    batch_size = 1024

    def __init__(self, reference: Decimal):
        self.reference = reference

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        return [1.0 if final_number(t) == self.reference else 0.0 for t in texts]


class MathQA(Task):
    """A GSM8K-format question answered by a causal LM; one question per run, as in the paper."""

    name = "math-qa"
    description = "One GSM8K-format question; reward 1 when the final number is the answer."
    Options = MathQAOptions
    default_generator = "hf-causal-lm"

    def __init__(self, options: MathQAOptions | None = None):
        super().__init__(options)
        o = self.options
        self.question, self.answer, self.reference = load_questions(
            o.data or str(SAMPLE_DATA))[o.question]
        self.tokenizer: Any = None

    def defaults(self) -> dict[str, Any]:
        return {
            "budget": 500,
            "rounds": {"samples_per_round": 50, "draw_batch_size": 50, "max_draws_per_round": 1000,
                       "temperature": self.options.temperature},
            "banel": {"distill": {"enabled": False},
                      "failure_model": {"name": "lora",
                                        "fit": {"epochs": 3, "lr": 1e-3, "batch_size": 8}},
                      "posterior": {"filter_factor": 2.0}},
            "eval": {"samples": 200, "prior_samples": 500, "max_draws": 2000},
        }

    def prompt(self) -> str:
        """The question in the prompt template."""
        return self.options.template.format(question=self.question)

    key = "text"  # the oracle reads the text: one text is one NRE, however it was tokenised

    def codec(self) -> CompletionCodec:
        return CompletionCodec(self)

    def valid(self, text: str) -> bool:
        """A completion without a final number is a sure failure."""
        return final_number(text) is not None

    def prior(self, ctx: TaskContext) -> Generator:
        if ctx.generator_name != "hf-causal-lm":
            raise ConfigError(f"generator.name: math-qa samples completions with hf-causal-lm, "
                              f"not {ctx.generator_name!r}")
        gen = ctx.build_generator(model=DEFAULT_MODEL, prompt=self.prompt(),
                                  max_new_tokens=self.options.max_new_tokens)
        self.tokenizer = gen.tokenizer
        return gen

    def oracle(self, ctx: TaskContext) -> RewardOracle:
        return AnswerOracle(self.reference)

    def eval_oracle(self, ctx: TaskContext) -> RewardOracle:
        return AnswerOracle(self.reference)  # cheap: sampled rates with Clopper-Pearson intervals


@hookimpl
def register_tasks(register):
    register(MathQA.name, MathQA)
