"""A task whose oracle reads text declares key = "text": one text is paid for once."""

import sqlite3

from banel_tasks.toy1d import BinCodec, Toy1d

from banel_framework.hookspecs import hookimpl
from banel_framework.plugins import PluginHost
from banel_framework.run import create_run, plan
from banel_framework.runner import execute


class PairCodec(BinCodec):
    """Two neighbouring bins read as one text (as two tokenisations of one string would)."""

    def decode(self, tokens):
        return f"pair{tokens[0] // 2}"


class PairedToy(Toy1d):
    name = "paired-toy"
    key = "text"

    def codec(self):
        return PairCodec(self.options)


class TokenToy(PairedToy):
    name = "token-toy"
    key = "tokens"


class Reg:
    @hookimpl
    def register_tasks(self, register):
        register(PairedToy.name, PairedToy)
        register(TokenToy.name, TokenToy)


def texts(run_dir):
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [t for (t,) in con.execute("SELECT text FROM evaluations ORDER BY id")]


def test_one_text_is_one_nre(tmp_path):
    host = PluginHost().load()
    host.pm.register(Reg(), name="paired")
    by_key = {}
    for task in ("paired-toy", "token-toy"):
        for method in ("pretrained", "reinforce"):
            p = plan([{"task": task, "method": method, "budget": 40, "progress": False,
                       "rounds": {"samples_per_round": 20}}], host)
            out = tmp_path / f"{task}-{method}"
            execute(create_run(p, out, host))
            by_key[task, method] = texts(out)
    for method in ("pretrained", "reinforce"):
        paired = by_key["paired-toy", method]
        assert len(paired) == len(set(paired))  # never the same text twice
        tokens = by_key["token-toy", method]
        assert len(tokens) > len(set(tokens))  # keyed by tokens, both bins of a pair are paid
