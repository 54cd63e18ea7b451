"""Property-based tests (hypothesis) of the ledger's invariants, on a real SQLite file, under
random sequences of reserve / mark / record / fail / kill-and-reopen, and of config parsing."""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from banel_framework.config import parse_value
from banel_framework.errors import BudgetExceeded
from banel_framework.ledger import Ledger

KEYS = st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True)
OPS = st.lists(st.one_of(
    st.tuples(st.just("reserve"), KEYS),
    st.tuples(st.just("record"), st.integers(0, 5)),
    st.tuples(st.just("fail"), st.integers(0, 5)),
    st.tuples(st.just("reopen"), st.none()),
), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, budget=st.integers(1, 20), counted=st.booleans())
def test_ledger_invariants_under_random_operations(ops, budget, counted):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ledger.sqlite"
        led = Ledger(path)
        led.set_meta("budget", budget)
        led.set_meta("failed_counts_budget", counted)
        done: dict[str, float] = {}
        failed: set[str] = set()
        reserved: list[str] = []
        for op, arg in ops:
            if op == "reserve":
                keys = [f"k{k}" for k in arg]
                fresh = [k for k in keys if not led.is_known(k)]
                if len(fresh) != len(keys):
                    with pytest.raises(ValueError):
                        led.reserve(1, keys, keys)
                    continue
                try:
                    led.reserve(1, keys, keys)
                    reserved += keys
                except BudgetExceeded:
                    assert led.nre_used() + len(keys) > budget
            elif op in ("record", "fail"):
                pending = [e.key for e in led.pending()][:arg]
                led.mark_called(pending)
                if op == "record":
                    led.record((k, float(len(k) % 2)) for k in pending)
                    done.update((k, float(len(k) % 2)) for k in pending)
                else:
                    led.fail((k, "boom") for k in pending)
                    failed.update(pending)
            else:  # a kill: the process dies, a new one opens the file
                led.conn.close()
                led = Ledger(path, existing=True)
            rows = led.evaluations()
            assert len({e.key for e in rows}) == len(rows) == len(reserved)  # never twice
            assert led.nre_used() <= budget  # never over budget
            assert {e.key: e.reward for e in rows if e.status == "done"} == done  # none lost
            assert {e.key for e in rows if e.status == "failed"} == failed
            assert all(e.reward is None for e in rows if e.status != "done")
            assert led.nre_used() == len(rows) - (0 if counted else len(failed))
        led.close()


@given(st.one_of(st.integers(), st.booleans(), st.text(st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\n\r[]{},:#&*!|>'\"%@`"), max_size=20)))
def test_set_values_parse_without_a_traceback(value):
    text = str(value).lower() if isinstance(value, bool) else str(value)
    parsed = parse_value(text)  # never raises for a plain scalar
    if isinstance(value, bool):
        assert parsed is value
    elif isinstance(value, int):
        assert parsed == value


@settings(deadline=None)  # the first example imports the task modules
@given(st.lists(st.integers(0, 40), max_size=20))
def test_task_codecs_read_malformed_samples_without_raising(tokens):
    from banel_tasks.addition import QueryCodec
    from banel_tasks.addition.arith import parse
    from banel_tasks.digits_data import DigitCodec

    text = QueryCodec().decode(tokens)
    parsed = parse(text, 5, True)
    assert parsed is None or (all(0 <= x < 10**5 for x in parsed) and text.endswith("="))
    assert isinstance(DigitCodec(4).decode(tokens), str)
