"""The NRE ledger: a SQLite file that records every oracle call before and after it happens."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BanelError, BudgetExceeded

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,            -- order of reservation: the NRE index
    key TEXT NOT NULL UNIQUE,          -- canonical sample key (token ids)
    text TEXT NOT NULL,                -- readable form
    round INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    reward REAL,                       -- NULL while pending and when failed
    error TEXT,                        -- why a failed call failed (after its retries)
    attempts INTEGER NOT NULL DEFAULT 0,
    reserved_at REAL NOT NULL,
    called_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS evaluations_round ON evaluations (round);
CREATE INDEX IF NOT EXISTS evaluations_status ON evaluations (status);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    status TEXT NOT NULL,              -- sampling, evaluating, evaluated, fitted, done
    data TEXT NOT NULL DEFAULT '{}',   -- JSON: proposals drawn, acceptance, checkpoints, ...
    started_at REAL NOT NULL,
    finished_at REAL
);
"""


@dataclass
class Evaluation:
    """One ledger row."""

    id: int
    key: str
    text: str
    round: int
    status: str
    reward: float | None
    attempts: int


class Ledger:
    """Reserve the budget, record pending and finished oracle calls, and answer duplicates."""

    def __init__(self, path: str | Path, *, existing: bool = False):
        self.path = Path(path)
        if existing and (not self.path.is_file() or self.path.stat().st_size == 0):
            raise BanelError(f"{self.path} is {'empty' if self.path.is_file() else 'missing'}: "
                             "this run never recorded anything; start it again with banel run")
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            if existing and not self._tables():
                raise BanelError(f"{self.path} holds no ledger tables")
            self.conn.executescript(SCHEMA)
            self._migrate()
            rows = self.conn.execute(
                "SELECT key, text, reward, status FROM evaluations ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise BanelError(f"{self.path} is not a readable ledger ({exc}); restore it from "
                             "a backup or start a new run") from None
        self._known: dict[str, float | None] = {}
        self._failed: set[str] = set()
        self._texts: dict[str, str] = {}  # readable form -> key of its first evaluation
        for key, text, reward, status in rows:
            self._known[key] = reward
            self._texts.setdefault(text, key)
            if status == "failed":
                self._failed.add(key)

    def _tables(self) -> set[str]:
        return {n for (n,) in self.conn.execute("SELECT name FROM sqlite_master")}

    def _migrate(self) -> None:
        """Ledgers of 0.2.0 and before: allow the 'failed' status and add the error column."""
        (sql,) = self.conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'evaluations'").fetchone()
        if "'failed'" in sql:
            return
        cols = "id, key, text, round, status, reward, attempts, reserved_at, called_at, finished_at"
        table = SCHEMA.split("CREATE TABLE IF NOT EXISTS evaluations")[1].split(";")[0]
        with self._transaction():
            self.conn.execute("CREATE TABLE evaluations_new" + table)
            self.conn.execute(f"INSERT INTO evaluations_new ({cols}) SELECT {cols} FROM evaluations")
            self.conn.execute("DROP TABLE evaluations")
            self.conn.execute("ALTER TABLE evaluations_new RENAME TO evaluations")
            self.conn.execute("CREATE INDEX evaluations_round ON evaluations (round)")
            self.conn.execute("CREATE INDEX evaluations_status ON evaluations (status)")

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A JSON value stored under `key`."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under `key`."""
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                          (key, json.dumps(value)))

    @property
    def budget(self) -> int:
        """The hard NRE budget."""
        value = self.get_meta("budget")
        if value is None:
            raise RuntimeError("ledger has no budget")
        return int(value)

    @budget.setter
    def budget(self, value: int) -> None:
        if value < self.nre_used():
            raise BudgetExceeded(f"budget {value} is below the {self.nre_used()} NREs already spent")
        self.set_meta("budget", int(value))

    # -- evaluations -----------------------------------------------------------------------

    @property
    def failed_counts(self) -> bool:
        """Whether failed calls count against the budget (oracle.failed_counts_budget)."""
        return bool(self.get_meta("failed_counts_budget", True))

    def nre_used(self) -> int:
        """NREs spent or reserved (pending calls count: their cost may already be incurred;
        failed ones unless oracle.failed_counts_budget is false)."""
        return len(self._known) - (0 if self.failed_counts else len(self._failed))

    def is_failed(self, key: str) -> bool:
        """True when the call on `key` failed after its retries (no reward is known)."""
        return key in self._failed

    def run_id(self) -> str:
        """A random id of this ledger's run, made once (the prefix of idempotency keys)."""
        value = self.get_meta("run_id")
        if value is None:
            value = uuid.uuid4().hex
            self.set_meta("run_id", value)
        return value

    def attempts(self) -> dict[str, int]:
        """Oracle dispatches: in all, and samples dispatched more than once (a kill mid-call,
        a broken worker pool); retries inside one dispatch are not counted here."""
        total, repeated = self.conn.execute(
            "SELECT COALESCE(SUM(attempts), 0), COALESCE(SUM(attempts > 1), 0) "
            "FROM evaluations").fetchone()
        return {"dispatched": int(total), "samples_dispatched_again": int(repeated)}

    def n_failed(self) -> int:
        """Calls recorded as failed."""
        return len(self._failed)

    def remaining(self) -> int:
        """NREs left in the budget."""
        return self.budget - self.nre_used()

    def is_known(self, key: str) -> bool:
        """True when `key` was evaluated or reserved already."""
        return key in self._known

    def reward(self, key: str) -> float | None:
        """The recorded reward of `key` (None when pending or unknown)."""
        return self._known.get(key)

    def key_of_text(self, text: str) -> str | None:
        """The key under which a sample with this readable form was evaluated, if any."""
        return self._texts.get(text)

    def reserve(self, round_: int, keys: list[str], texts: list[str],
                round_data: dict[str, Any] | None = None) -> None:
        """Write new samples as pending, within the budget, in one transaction."""
        if len(set(keys)) != len(keys):
            raise ValueError("reserve() needs unique keys")
        dup = [k for k in keys if k in self._known]
        if dup:
            raise ValueError(f"already in the ledger: {dup[:3]}")
        now = time.time()
        with self._transaction():
            used = self.conn.execute(
                "SELECT COUNT(*) FROM evaluations" + (
                    "" if self.failed_counts else " WHERE status != 'failed'")).fetchone()[0]
            if used + len(keys) > self.budget:
                raise BudgetExceeded(
                    f"reserving {len(keys)} NREs would exceed the budget ({used}/{self.budget} used)")
            self.conn.executemany(
                "INSERT INTO evaluations (key, text, round, status, reserved_at) "
                "VALUES (?, ?, ?, 'pending', ?)",
                [(k, t, round_, now) for k, t in zip(keys, texts)])
            if round_data is not None:
                self._update_round(round_, "evaluating", round_data)
        for k, t in zip(keys, texts):
            self._known[k] = None
            self._texts.setdefault(t, k)

    def pending(self) -> list[Evaluation]:
        """Reserved calls with no recorded reward yet, oldest first."""
        return self._rows("WHERE status = 'pending' ORDER BY id")

    def mark_called(self, keys: list[str]) -> None:
        """Record that an oracle call on `keys` is about to be made."""
        now = time.time()
        with self._transaction():
            self.conn.executemany(
                "UPDATE evaluations SET called_at = ?, attempts = attempts + 1 "
                "WHERE key = ? AND status = 'pending'", [(now, k) for k in keys])

    def record(self, results: Iterable[tuple[str, float]]) -> None:
        """Write the rewards of finished calls."""
        results = list(results)
        now = time.time()
        with self._transaction():
            self.conn.executemany(
                "UPDATE evaluations SET status = 'done', reward = ?, finished_at = ? "
                "WHERE key = ? AND status = 'pending'", [(float(r), now, k) for k, r in results])
        for k, r in results:
            self._known[k] = float(r)

    def fail(self, results: Iterable[tuple[str, str]]) -> None:
        """Record calls that failed after their retries, with their errors (no reward)."""
        results = list(results)
        now = time.time()
        with self._transaction():
            self.conn.executemany(
                "UPDATE evaluations SET status = 'failed', error = ?, finished_at = ? "
                "WHERE key = ? AND status = 'pending'", [(e, now, k) for k, e in results])
        self._failed.update(k for k, _ in results)

    def failures(self) -> list[tuple[str, str, str]]:
        """(key, text, error) of every failed call, in NRE order."""
        return list(self.conn.execute(
            "SELECT key, text, error FROM evaluations WHERE status = 'failed' ORDER BY id"))

    def evaluations(self, round_: int | None = None, status: str | None = None,
                    upto_round: int | None = None) -> list[Evaluation]:
        """Rows in NRE order, optionally for one round, up to a round, or with a status."""
        where, args = [], []
        if round_ is not None:
            where.append("round = ?")
            args.append(round_)
        if upto_round is not None:
            where.append("round <= ?")
            args.append(upto_round)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._rows(f"{clause} ORDER BY id", args)

    def solutions(self) -> list[Evaluation]:
        """Evaluations with a positive reward."""
        return self._rows("WHERE status = 'done' AND reward > 0 ORDER BY id")

    def _rows(self, clause: str, args: Iterable[Any] = ()) -> list[Evaluation]:
        cur = self.conn.execute(
            "SELECT id, key, text, round, status, reward, attempts FROM evaluations " + clause,
            tuple(args))
        return [Evaluation(*row) for row in cur]

    # -- rounds ----------------------------------------------------------------------------

    def round(self, round_: int) -> tuple[str, dict[str, Any]] | None:
        """(status, data) of a round, or None if it never started."""
        row = self.conn.execute("SELECT status, data FROM rounds WHERE round = ?",
                                (round_,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def rounds(self) -> list[tuple[int, str, dict[str, Any]]]:
        """(round, status, data) of every round, in order."""
        cur = self.conn.execute("SELECT round, status, data FROM rounds ORDER BY round")
        return [(r, s, json.loads(d)) for r, s, d in cur]

    def set_round(self, round_: int, status: str, data: dict[str, Any]) -> None:
        """Create or update a round's record (data keys are merged)."""
        with self._transaction():
            self._update_round(round_, status, data)

    def delete_round(self, round_: int) -> None:
        """Forget a round that reserved nothing (it will be redrawn)."""
        self.conn.execute("DELETE FROM rounds WHERE round = ?", (round_,))

    def _update_round(self, round_: int, status: str, data: dict[str, Any]) -> None:
        now = time.time()
        row = self.conn.execute("SELECT data FROM rounds WHERE round = ?", (round_,)).fetchone()
        if row is None:
            self.conn.execute(
                "INSERT INTO rounds (round, status, data, started_at) VALUES (?, ?, ?, ?)",
                (round_, status, json.dumps(data), now))
        else:
            merged = {**json.loads(row[0]), **data}
            finished = now if status == "done" else None
            self.conn.execute(
                "UPDATE rounds SET status = ?, data = ?, finished_at = ? WHERE round = ?",
                (status, json.dumps(merged), finished, round_))

    def _transaction(self):
        return _Transaction(self.conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
