import sqlite3

import pytest

from banel_framework.errors import BudgetExceeded
from banel_framework.interfaces import Codec, RewardOracle
from banel_framework.ledger import Ledger
from banel_framework.oracle import LedgeredOracle, OracleError
from banel_framework.samples import Samples


class Digits(Codec):
    def decode(self, tokens):
        return "".join(map(str, tokens))


class Recording(RewardOracle):
    """Counts every sample it is asked about; reward 1 for sequences starting with 9."""

    batch_size = 2

    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, samples, texts):
        self.seen.extend(texts)
        return [float(s[0] == 9) for s in samples.sequences()]


def make(tmp_path, budget=5):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.set_meta("budget", budget)
    oracle = Recording()
    return ledger, oracle, LedgeredOracle(oracle, ledger, Digits())


def test_duplicates_are_answered_from_the_ledger(tmp_path):
    ledger, oracle, gate = make(tmp_path)
    r1 = gate.evaluate(1, Samples.from_sequences([[9, 1], [1, 2], [9, 1]]))
    assert r1 == [1.0, 0.0, 1.0]
    r2 = gate.evaluate(2, Samples.from_sequences([[1, 2], [3]]))
    assert r2 == [0.0, 0.0]
    assert sorted(oracle.seen) == ["12", "3", "91"]  # each sample reached the oracle once
    assert ledger.nre_used() == 3
    assert [e.round for e in ledger.evaluations()] == [1, 1, 2]


def test_budget_is_reserved_before_any_call(tmp_path):
    ledger, oracle, gate = make(tmp_path, budget=2)
    with pytest.raises(BudgetExceeded):
        gate.evaluate(1, Samples.from_sequences([[1], [2], [3]]))
    assert oracle.seen == [] and ledger.nre_used() == 0


def test_pending_calls_survive_a_crash_and_are_flushed_once(tmp_path):
    ledger, _, _ = make(tmp_path)
    ledger.reserve(1, ["1", "2", "3"], ["1", "2", "3"])
    ledger.mark_called(["1", "2"])
    ledger.record([("1", 0.0)])
    ledger.close()  # the process dies here: "2" was called but its reward never written
    again = Ledger(tmp_path / "ledger.sqlite")
    assert [e.key for e in again.pending()] == ["2", "3"]
    oracle = Recording()
    gate = LedgeredOracle(oracle, again, Digits())
    assert gate.flush() == 2
    assert sorted(oracle.seen) == ["2", "3"] and again.pending() == []
    rows = {e.key: e for e in again.evaluations()}
    assert rows["2"].attempts == 2 and rows["3"].attempts == 1
    assert again.nre_used() == 3


def test_each_call_is_written_before_and_after(tmp_path):
    ledger, oracle, gate = make(tmp_path)
    states = []

    class Spy(RewardOracle):
        def __call__(self, samples, texts):
            con = sqlite3.connect(tmp_path / "ledger.sqlite")
            states.append(con.execute(
                "SELECT status, called_at IS NOT NULL FROM evaluations").fetchall())
            return [0.0] * len(samples)

    LedgeredOracle(Spy(), ledger, Digits()).evaluate(1, Samples.from_sequences([[4]]))
    assert states == [[("pending", 1)]]
    assert ledger.evaluations()[0].status == "done"


def test_oracle_returning_wrong_shape_leaves_calls_pending(tmp_path):
    ledger, _, _ = make(tmp_path)

    class Bad(RewardOracle):
        def __call__(self, samples, texts):
            return [1.0]

    with pytest.raises(OracleError, match="1 rewards for 2 samples"):
        LedgeredOracle(Bad(), ledger, Digits()).evaluate(1, Samples.from_sequences([[1], [2]]))
    assert len(ledger.pending()) == 2


def test_rounds_merge_their_data(tmp_path):
    ledger, _, _ = make(tmp_path)
    ledger.set_round(1, "sampling", {"a": 1})
    ledger.set_round(1, "done", {"b": 2})
    assert ledger.round(1) == ("done", {"a": 1, "b": 2})
    assert ledger.round(2) is None


def test_budget_cannot_fall_below_spent(tmp_path):
    ledger, _, gate = make(tmp_path)
    gate.evaluate(1, Samples.from_sequences([[1], [2]]))
    with pytest.raises(BudgetExceeded):
        ledger.budget = 1
    ledger.budget = 10
    assert ledger.remaining() == 8
