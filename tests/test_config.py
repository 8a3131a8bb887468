import pytest

from replab.config import ConfigError, parse_overrides
from replab.methods import configure


def test_method_defaults_then_file_then_overrides():
    cfg = configure("beta_vae", "digits")
    # disentanglement_lib's published optimiser settings come from the method
    assert cfg.train.lr == 1e-4 and cfg.train.batch_size == 64
    assert cfg.train.optimizer == "adam" and cfg.train.schedule == "constant"
    assert cfg.model.beta == 4.0 and cfg.model.latent_dim == 10
    cfg = configure(
        "beta_vae",
        "digits",
        {"train": {"lr": 1e-3}, "model": {"beta": 2}},
        {"beta": 8, "train.steps": 7},
    )
    assert cfg.train.lr == 1e-3  # from the file
    assert cfg.model.beta == 8.0 and isinstance(cfg.model.beta, float)  # override wins
    assert cfg.train.steps == 7


def test_roundtrip_through_dict():
    cfg = configure("annealed_vae", "digits", overrides={"c_max": 5, "train.seed": 3})
    again = configure(file_values=cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"train.batch_size": -1}, "train.batch_size: must be >= 1"),
        ({"beta": -0.5}, "model.beta: must be >= 0"),
        ({"beta": "high"}, "model.beta: expected a number"),
        ({"train.steps": 1.5}, "train.steps: expected an integer"),
        ({"nope": 1}, "unknown key nope; valid keys: model.architecture"),
        ({"train.nope": 1}, "unknown key train.nope; valid keys: batch_size"),
        ({"architecture": "resnet"}, "model.architecture: 'resnet' is not valid; choose from"),
        ({"train.betas": [0.9]}, "train.betas"),
    ],
)
def test_bad_values_are_refused_with_the_key(overrides, message):
    with pytest.raises(ConfigError) as e:
        configure("beta_vae", "digits", overrides=overrides)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_method_and_data_name_the_choices():
    with pytest.raises(ConfigError, match="unknown method 'nope'; choose from: .*beta_vae"):
        configure("nope", "digits")
    with pytest.raises(ConfigError, match="unknown data set 'nope'; choose from: .*digits"):
        configure("vae", "nope")
    with pytest.raises(ConfigError, match="needs a path"):
        configure("vae", "idx")


def test_parse_overrides_yaml_scalars():
    assert parse_overrides(["a=1", "b=0.5", "c=true", "d=x", "e=[1, 2]"]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "x",
        "e": [1, 2],
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["novalue"])


def test_bad_yaml_file(tmp_path):
    from replab.config import load_yaml

    p = tmp_path / "bad.yaml"
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(p)
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_yaml(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown key trian"):
        configure("vae", "digits", {"trian": {}})


def test_exponent_without_a_dot_is_a_number():
    # YAML 1.1 reads 1e-3 as a string; a learning rate written that way must still work
    cfg = configure("vae", "digits", overrides={"train.lr": "1e-3"})
    assert cfg.train.lr == 1e-3
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        configure("vae", "digits", overrides={"train.lr": "fast"})
