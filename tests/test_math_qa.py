"""math-qa: answer extraction, data and option errors, BaNEL and the baseline end to end."""

import json
import sqlite3
from decimal import Decimal

import pytest
import yaml
from banel_tasks.math_qa import AnswerOracle, final_number, load_questions, reference_answer
from click.testing import CliRunner
from hf_fixtures import *

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_framework.samples import Samples

FAST = ["--set", "task_options.max_new_tokens=12", "--set", "rounds.samples_per_round=8",
        "--set", "rounds.draw_batch_size=16", "--set", "eval.samples=16",
        "--set", "eval.prior_samples=16", "--set", "banel.failure_model.fit.epochs=30",
        "--set", "banel.failure_model.fit.lr=0.02", "--set", "banel.failure_model.fit.batch_size=4"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    res = invoke(*args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.mark.parametrize("text, expected", [
    ("3 + 5 = 8\n#### 8", "8"),
    ("so 1,234 apples.\n#### 1,234", "1234"),
    ("She pays $12.50 in total", "12.50"),
    ("It fell to -4 degrees, then 7.", "7"),
    ("#### 42 (because 6 * 7)", "42"),
    ("The answer is \\boxed{3,185}. Check: 91 * 35", "3185"),
    ("we get 0.75 * 8 = 6", "6"),
    ("the values 7, 10, 13 add up", "13"),
])
def test_final_number(text, expected):
    assert final_number(text) == Decimal(expected)


def test_no_number_and_answers_after_hashes_only():
    assert final_number("I do not know.") is None
    assert final_number("the total is 5 ####") is None  # an empty final answer is no answer
    assert reference_answer("3 * 5 = 15\n#### 15") == Decimal(15)
    assert reference_answer("no marker 15") is None
    oracle = AnswerOracle(Decimal("1.25"))
    texts = ["#### 1.25", "1.250", "it costs $1.25.", "#### 125", "1.2"]
    assert oracle(Samples.from_sequences([[1]] * 5), texts) == [1, 1, 1, 0, 0]
    from banel_tasks.math_qa import MathQA

    task = MathQA()  # its free check (banel.exclude_invalid): no final number, a sure failure
    assert [task.valid(t) for t in ["I do not know.", "the total is 5 ####", *texts]] == \
        [False, False, True, True, True, True, True]


def test_bundled_sample_is_gsm8k_format():
    items = load_questions(str(__import__("banel_tasks.math_qa").math_qa.SAMPLE_DATA))
    assert len(items) == 12 and items[0][2] == Decimal(15) and items[8][2] == Decimal(3185)


@pytest.mark.parametrize("sets, message", [
    (["task_options.question=12"], "question 12 is out of range: the data holds 12 questions"),
    (["task_options.template=Solve {x}"], "use {question} only"),
    (["task_options.template=no placeholder"], "template must contain {question}"),
    (["task_options.data=/nonexistent/gsm.jsonl"], "no such file: /nonexistent/gsm.jsonl"),
    (["generator.name=categorical"], "math-qa samples completions with hf-causal-lm"),
    (["banel.failure_model.init=scratch", "budget=8"], "a LoRA adapter always starts from its base"),
])
def test_bad_options_exit_2_with_one_line(tiny_lm, tmp_path, sets, message):
    out = tmp_path / "run"
    args = ["run", "--task", "math-qa", "--out", out, "-q", *FAST]
    if not any(s.startswith("generator.name") for s in sets):
        args += ["--set", f"generator.options.model={tiny_lm}"]
    for s in sets:
        args += ["--set", s]
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()  # every one is found before the first NRE


def test_bad_data_file(tmp_path, tiny_lm):
    bad = tmp_path / "gsm.jsonl"
    bad.write_text(json.dumps({"question": "What is 2 + 2?", "answer": "4"}) + "\n")
    res = invoke("run", "--task", "math-qa", "--out", tmp_path / "run", "-q",
                 "--set", f"task_options.data={bad}", "--set", f"generator.options.model={tiny_lm}")
    assert res.exit_code == 2 and "gsm.jsonl:1: the answer has no number after '####'" in res.stderr


def test_banel_on_one_question_end_to_end_and_resumed(tiny_lm, tmp_path):
    out = tmp_path / "run"
    ok("run", "--task", "math-qa", "--out", out, "-q", "--budget", 16, *FAST,
       "--set", "task_options.question=3", "--set", f"generator.options.model={tiny_lm}")
    s = json.loads((out / "summary.json").read_text())
    assert (s["task"], s["method"], s["nre_used"], s["rounds"]) == ("math-qa", "banel", 16, 2)
    for which in ("prior", "final"):
        rate = s["eval"][which]
        assert rate["exact"] is False and rate["n"] == 16
        assert rate["rate"] == rate["k"] / 16 and rate["ci"][1] > 0.1
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["failure_model_r001.pt", "failure_model_r002.pt"]  # no copy of the prior
    weights = (tiny_lm / "model.safetensors").stat().st_size
    assert all((out / "checkpoints" / c).stat().st_size < 0.25 * weights for c in ckpts)

    run = open_run(out)
    tok = run.prior.tokenizer
    rows = sqlite3.connect(out / "ledger.sqlite").execute(
        "SELECT key, text, reward, status, round FROM evaluations").fetchall()
    assert len(rows) == len({r[0] for r in rows}) == 16 and {r[3] for r in rows} == {"done"}
    assert {r[4] for r in rows} == {1, 2}
    keys = [r[0] for r in rows]
    texts = [tok.decode(seq, skip_special_tokens=True) for seq in Samples.from_keys(keys).sequences()]
    assert texts == [r[1] for r in rows]
    assert [r[2] for r in rows] == AnswerOracle(run.task.reference)(Samples.from_keys(keys), texts)
    assert s["solutions_found"] == sum(r[2] for r in rows)
    assert run.task.question.startswith("Lena has 5 boxes")

    posterior = run.method.restore(run).posterior  # adapters loaded back from their checkpoints
    assert len(posterior.regions) == 2
    round1 = Samples.from_keys([r[0] for r in rows if r[4] == 1 and r[2] == 0])
    rejected, _ = posterior.reject_mask(round1)
    assert bool(rejected.all())  # the posterior avoids the failures it was shown
    fresh = run.prior.sample(32, seed=123)
    assert float(posterior.reject_mask(fresh)[0].float().mean()) < 0.5  # but not everything

    ok("resume", out, "--budget", 24)
    s = json.loads((out / "summary.json").read_text())
    assert s["nre_used"] == 24 and s["rounds"] == 3
    assert (out / "checkpoints" / "failure_model_r003.pt").is_file()


def test_pretrained_baseline_runs_on_math_qa(tiny_lm, tmp_path):
    out = tmp_path / "run"
    ok("run", "--task", "math-qa", "--method", "pretrained", "--out", out, "-q",
       "--budget", 8, *FAST, "--set", f"generator.options.model={tiny_lm}")
    s = json.loads((out / "summary.json").read_text())
    assert s["method"] == "pretrained" and s["nre_used"] == 8
    assert s["eval"]["final"]["rate"] == s["eval"]["prior"]["rate"]
    assert not (out / "checkpoints").exists() or not list((out / "checkpoints").iterdir())


def test_task_defaults_suit_a_language_model():
    res = ok("config", "--task", "math-qa", "--set", "task_options.temperature=0.7")
    cfg = yaml.safe_load(res.output)
    assert cfg["banel"]["failure_model"]["name"] == "lora" and cfg["rounds"]["temperature"] == 0.7
    assert cfg["eval"]["samples"] <= 500 and cfg["banel"]["distill"]["enabled"] is False


def test_compare_runs_banel_and_the_baseline_on_math_qa(tiny_lm, tmp_path):
    out = tmp_path / "cmp"
    ok("compare", "--task", "math-qa", "--methods", "pretrained,banel", "--seeds", 1,
       "--budget", 8, "--out", out, "-q", *FAST, "--set", f"generator.options.model={tiny_lm}")
    result = json.loads((out / "compare.json").read_text())
    methods = {row["method"] for row in result["table"]}
    assert methods == {"pretrained", "banel"}
    for m in methods:
        s = json.loads((out / m / "seed0" / "summary.json").read_text())
        assert s["nre_used"] == 8 and s["task"] == "math-qa"
