import pytest

from banel_framework.config import (
    RunConfig,
    build_config,
    deep_merge,
    describe_fields,
    load_config_file,
    parse_overrides,
    parse_value,
)
from banel_framework.errors import ConfigError
from banel_framework.run import plan


def test_parse_value_handles_yaml_and_scientific_floats():
    assert parse_value("1e-3") == pytest.approx(0.001)
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("prior") == "prior"
    assert parse_value("12") == 12


def test_overrides_nest_and_merge_over_lower_layers():
    over = parse_overrides(["rounds.samples_per_round=7", "banel.posterior.filter_factor=1.1"])
    cfg = build_config([{"rounds": {"samples_per_round": 3, "draw_batch_size": 99}}, over])
    assert cfg.rounds.samples_per_round == 7
    assert cfg.rounds.draw_batch_size == 99  # untouched sibling survives the merge
    assert cfg.sections()["banel"]["posterior"]["filter_factor"] == pytest.approx(1.1)


def test_unknown_option_names_the_field():
    with pytest.raises(ConfigError, match=r"rounds\.samples_per_rond: unknown option"):
        build_config([parse_overrides(["rounds.samples_per_rond=3"])])
    with pytest.raises(ConfigError, match=r"banel\.samples_per_rond: unknown option"):
        plan([parse_overrides(["banel.samples_per_rond=3"])])
    with pytest.raises(ConfigError, match=r"budgte: unknown option"):
        plan([{"budgte": 3}])


def test_bad_value_names_field_and_value():
    with pytest.raises(ConfigError, match=r"budget: .*greater than or equal to 1.*-5"):
        build_config([{"budget": -5}])
    with pytest.raises(ConfigError, match=r"banel\.failure_model\.init"):
        plan([{"banel": {"failure_model": {"init": "nowhere"}}}])


def test_set_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["budget"])


def test_config_files_toml_yaml_and_malformed(tmp_path):
    (tmp_path / "a.toml").write_text("budget = 30\n[banel]\nsamples_per_round = 5\n")
    (tmp_path / "b.yaml").write_text("budget: 40\n")
    (tmp_path / "bad.toml").write_text("budget = = 3\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert load_config_file(tmp_path / "a.toml")["banel"]["samples_per_round"] == 5
    assert load_config_file(tmp_path / "b.yaml")["budget"] == 40
    with pytest.raises(ConfigError, match="malformed config file"):
        load_config_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config_file(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "missing.toml")


def test_deep_merge_does_not_mutate_inputs():
    a = {"x": {"y": 1}}
    b = {"x": {"z": 2}}
    out = deep_merge(a, b)
    assert out == {"x": {"y": 1, "z": 2}} and a == {"x": {"y": 1}}


def test_every_option_is_described():
    rows = describe_fields(RunConfig)
    missing = [k for k, _, d in rows if not d]
    assert not missing, f"options without a description: {missing}"
