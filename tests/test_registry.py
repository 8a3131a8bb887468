"""The registry: tables and decorators, filled by the packages that register."""

import pytest

from replab.config import ConfigError
from replab.data import dataset_names, make_dataset
from replab.methods import method_class, method_names
from replab.registry import DATASETS, METHODS, PILLARS, register_dataset, register_method


def test_every_method_has_a_pillar_a_summary_and_what_it_accepts():
    assert len(method_names()) >= 21
    for name in method_names():
        entry = METHODS[name]
        assert entry.pillar in PILLARS and entry.summary, name
        assert entry.obj.registry_name == name
        assert entry.obj.accepts.describe()  # replab list shows it


def test_data_sets_register_factories_with_or_without_an_argument():
    assert {"sprites", "digits", "idx", "text", "wav", "tones"} <= set(dataset_names())
    assert DATASETS["idx"].takes_argument and not DATASETS["sprites"].takes_argument
    assert make_dataset("digits").spec == "digits"


def test_registering_twice_or_in_no_pillar_is_refused():
    with pytest.raises(ValueError, match="pillar must be one of"):
        register_method("x", pillar="other")
    with pytest.raises(ValueError, match="registered twice"):
        register_method("vae", pillar="generative")(type("Again", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset("digits")(lambda: None)
    assert METHODS["vae"].obj.__name__ == "VAE"  # the table is unchanged


def test_an_unknown_method_names_the_choices():
    with pytest.raises(ConfigError, match="unknown method 'betavae'; choose from: .*beta_vae"):
        method_class("betavae")
