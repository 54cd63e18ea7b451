"""Addition text: the vocabulary, random queries, parsing, and carry chains."""

from __future__ import annotations

import re

import torch

DIGITS = "0123456789"
PLUS, EQUALS, EOS = 10, 11, 12
VOCAB = 13
PAD = 13  # the target's internal padding symbol (never in a query)
CHARS = DIGITS + "+="


def encode(text: str) -> list[int]:
    """Token ids of a string of digits, '+' and '='."""
    return [CHARS.index(c) for c in text]


def decode(tokens: list[int]) -> str:
    """The string of token ids; EOS reads as nothing, other ids as '?'."""
    return "".join(CHARS[t] if t < len(CHARS) else ("" if t == EOS else "?") for t in tokens)


def query_pattern(max_digits: int) -> re.Pattern[str]:
    """A valid query: two operands of 1..max_digits digits, then '='."""
    return re.compile(rf"^(\d{{1,{max_digits}}})\+(\d{{1,{max_digits}}})=$")


def has_leading_zero(operand: str) -> bool:
    """'07' has a leading zero; '0' and '70' do not."""
    return len(operand) > 1 and operand[0] == "0"


def parse(text: str, max_digits: int, allow_leading_zeros: bool) -> tuple[int, int] | None:
    """The operands of a valid query, or None."""
    m = query_pattern(max_digits).match(text)
    if not m:
        return None
    a, b = m.group(1), m.group(2)
    if not allow_leading_zeros and (has_leading_zero(a) or has_leading_zero(b)):
        return None
    return int(a), int(b)


def carry_chain(a: int, b: int) -> int:
    """Length of the longest run of consecutive carries when adding a and b."""
    best = run = carry = 0
    while a or b or carry:
        s = a % 10 + b % 10 + carry
        carry = int(s >= 10)
        run = run + 1 if carry else 0
        best = max(best, run)
        a, b = a // 10, b // 10
    return best


def propagate_run(a: int, b: int) -> int:
    """Longest run of consecutive digit positions where a's and b's digits sum to 9 (a missing
    digit is 0): a carry from below passes through such a run, so a target that writes the sum
    from its first digit must look that many digits ahead to know it."""
    best = run = 0
    while a or b:
        run = run + 1 if a % 10 + b % 10 == 9 else 0
        best = max(best, run)
        a, b = a // 10, b // 10
    return best


def random_operands(n: int, max_digits: int, gen: torch.Generator,
                    lengths: str = "uniform") -> torch.Tensor:
    """Operands without leading zeros; [n] int64.

    lengths="uniform": the number of digits is uniform in 1..max_digits;
    lengths="value": the value is uniform in 0..10**max_digits - 1 (mostly max_digits digits).
    """
    if lengths == "value":
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        return (u * 10 ** max_digits).long().clamp_max(10 ** max_digits - 1)
    lengths = torch.randint(1, max_digits + 1, (n,), generator=gen)
    low = torch.where(lengths == 1, torch.zeros_like(lengths), 10 ** (lengths - 1))
    high = 10 ** lengths
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    return low + (u * (high - low).double()).long().clamp_max(high - low - 1)


def random_queries(n: int, max_digits: int, gen: torch.Generator,
                   lengths: str = "uniform") -> list[tuple[int, int]]:
    """Pairs of operands drawn from the training distribution."""
    a = random_operands(n, max_digits, gen, lengths).tolist()
    b = random_operands(n, max_digits, gen, lengths).tolist()
    return list(zip(a, b))
