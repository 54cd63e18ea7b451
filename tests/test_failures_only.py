"""--failures-only (the paper's protocol) and banel.exclude_known_failures."""

import yaml
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run, plan


def test_failures_only_turns_every_success_feedback_off_and_is_recorded(tmp_path):
    default = plan([{"task": "addition-attack"}]).config.banel
    assert default["failure_model"]["success_weight"] == 100 and default["distill"]["success_share"] == 0.4
    cfg = plan([{"task": "addition-attack", "failures_only": True,
                 "banel": {"posterior": {"guard_successes": True},
                           "explore_neighbours": 0.5, "explore_mutations": 0.5,
                           "explore_adapt": True, "explore_crossover": 0.3,
                           "explore_indel": 0.3, "explore_unscreened": 0.5,
                           "explore_unscreened_adapt": True}}]).config
    b = cfg.banel
    assert cfg.failures_only and b["failure_model"]["success_weight"] == 0
    assert b["distill"]["success_share"] == 0 and b["distill"]["success_neighbours"] == 0
    assert not b["posterior"]["guard_successes"] and not b["train_on_positives"]
    assert b["explore_neighbours"] == b["explore_mutations"] == 0 and not b["explore_adapt"]
    assert b["explore_crossover"] == b["explore_indel"] == b["explore_unscreened"] == 0
    assert not b["explore_unscreened_adapt"]
    # the task's own failures-only defaults, under the user's settings
    assert default["failure_model"]["data"] == "all" and default["posterior"]["window"] is None
    assert b["failure_model"]["data"] == "round" and b["posterior"]["reference"] == "proposal"
    assert b["posterior"]["window"] == 3 and b["failure_model"]["fit"]["epochs"] == 5
    assert default["failure_model"]["fit"]["epochs"] == 10  # the task's default method keeps 10
    assert b["exclude_invalid"] and b["temperature"] == 1.2 and cfg.rounds.free_check
    assert not default["exclude_invalid"] and default["temperature"] is None
    assert cfg.rounds.temperature == 1.0  # the prior's reference rate stays at temperature 1
    assert cfg.rounds.samples_per_round == 125  # rounds of 125 under the protocol, 500 without
    assert plan([{"task": "addition-attack"}]).config.rounds.samples_per_round == 500
    assert b["failure_model"]["fit"]["lr"] == default["failure_model"]["fit"]["lr"]  # merged
    mine = plan([{"task": "addition-attack", "failures_only": True,
                  "banel": {"posterior": {"window": 5}}}]).config.banel["posterior"]
    assert mine["window"] == 5 and mine["reference"] == "proposal"
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--failures-only", "--budget", "20", "-q", "--out",
                                    str(out), "--set", "banel.failure_model.success_weight=5"])
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["failures_only"] is True and saved["banel"]["failure_model"]["success_weight"] == 0


def _known_failure_mass(run_dir):
    run = open_run(run_dir)
    support = run.task.support()
    probs = run.method.final_distribution(run)[1].probabilities(support)
    failed = [i for i, k in enumerate(support.keys()) if run.ledger.reward(k) == 0]
    return float(probs[failed].sum()), len(failed)


def test_known_failures_can_be_excluded_exactly(tmp_path):
    masses = {}
    for on in (False, True):
        out = tmp_path / str(on)
        res = CliRunner().invoke(main, [
            "run", "--budget", "30", "-q", "--out", str(out),
            "--set", "banel.posterior.filter_factor=50",  # loose regions: known failures survive
            "--set", f"banel.exclude_known_failures={str(on).lower()}"])
        assert res.exit_code == 0, res.output
        masses[on] = _known_failure_mass(out)
    assert masses[False][1] > 0 and masses[False][0] > 0.01
    assert masses[True][0] == 0.0
    run = open_run(tmp_path / "True")
    rounds = [d for _, _, d in run.ledger.rounds()]
    assert sum(d["rejected_by_round"].get("0", 0) for d in rounds[1:]) > 0  # 0: known failures


def test_digits_failures_only_keeps_distillation_without_sixes():
    """The configuration behind digits' failures-only 12.7x (docs/digits.md)."""
    b = plan([{"task": "digits-0to6", "failures_only": True}]).config.banel
    assert b["distill"]["enabled"] and b["distill"]["acceptance_below"] == 1.0
    assert b["distill"]["success_share"] == 0 and b["failure_model"]["success_weight"] == 0
    assert b["posterior"]["filter_factor"] == 0.5
