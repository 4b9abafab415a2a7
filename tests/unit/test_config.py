from dataclasses import asdict, dataclass
from types import SimpleNamespace

import pytest

from plugins.text_classifier.config import Hyperparameters as TextHyperparameters
from sagemaker_platform import hyperparameters
from sagemaker_platform.config import (
    ConfigError,
    ServeConfig,
    TrainSettings,
    describe,
    serve_config_from_env,
    setting,
)
from sagemaker_platform.plugin import Plugin


def parse_hyperparameters(raw):
    """The platform's and the plug-in's hyperparameters as one namespace."""
    job = hyperparameters.parse(raw)
    return SimpleNamespace(**asdict(job.settings), **asdict(job.hp))


DEFAULTS = SimpleNamespace(**asdict(TrainSettings()), **asdict(TextHyperparameters()))


def test_defaults_when_empty():
    job = hyperparameters.parse({})
    assert job.plugin.name == "text_classifier"
    assert parse_hyperparameters({}) == DEFAULTS


def test_strings_are_typed():
    cfg = parse_hyperparameters(
        {"epochs": "3", "learning_rate": "5e-5", "class_weighting": "false", "pooling": "cls"}
    )
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.learning_rate == pytest.approx(5e-5)
    assert cfg.class_weighting is False
    assert cfg.pooling == "cls"


def test_json_quoted_strings_and_integral_floats_are_accepted():
    cfg = parse_hyperparameters({"pooling": '"cls"', "epochs": "4.0"})
    assert cfg.pooling == "cls" and cfg.epochs == 4


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("epochs", "three", "epochs='three' is not valid: expected an integer from 1 to 10000"),
        ("epochs", "2.5", "expected an integer"),
        ("epochs", "0", "epochs='0' is out of range"),
        ("learning_rate", "nan", "learning_rate='nan' is not valid"),
        ("pooling", "max", "expected one of mean, cls"),
        ("precision", "64", "one of auto, 32"),
        ("class_weighting", "maybe", "expected true or false"),
        ("validation_fraction", "1.5", "validation_fraction='1.5' is out of range"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(key, value, expected):
    with pytest.raises(ConfigError) as err:
        parse_hyperparameters({key: value})
    assert expected in str(err.value)


def test_unknown_key_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match="unknown hyperparameter 'epoch'.*; known: .*epochs"):
        parse_hyperparameters({"epoch": "3"})


def test_the_known_keys_are_the_platforms_and_the_plugins():
    with pytest.raises(ConfigError) as err:
        parse_hyperparameters({"poolng": "cls"})
    assert "model=text_classifier" in str(err.value)
    assert "batch_size" in str(err.value) and "pooling" in str(err.value)


def test_sagemaker_keys_are_accepted_and_kept_apart():
    raw = {"sagemaker_program": "x", "_tuning_objective_metric": "val_f1"}
    job = hyperparameters.parse(raw)
    assert job.reserved == raw
    assert parse_hyperparameters(raw) == DEFAULTS


def test_an_unknown_model_names_the_shipped_ones():
    with pytest.raises(
        Exception, match="model='nope': no such plug-in; shipped: .*text_classifier"
    ):
        hyperparameters.parse({"model": "nope"})


def test_a_plugin_may_not_reuse_a_platform_name():
    @dataclass(frozen=True)
    class Clashing:
        epochs: int = setting(1, "mine")

    class Bad(Plugin):
        name = "bad"
        Hyperparameters = Clashing

    with pytest.raises(ConfigError, match="declares hyperparameter 'epochs'"):
        hyperparameters.check_names(Bad())


def test_a_plugins_settings_parse_without_postponed_annotations():
    namespace: dict = {}
    exec(
        "from dataclasses import dataclass\n"
        "from sagemaker_platform.config import setting\n"
        "@dataclass(frozen=True)\n"
        "class H:\n"
        "    width: int = setting(4, 'w', lo=1, hi=8)\n"
        "    on: bool = setting(True, 'o')\n",
        namespace,
    )
    from sagemaker_platform.config import parse_fields

    assert parse_fields(namespace["H"], {"width": "6", "on": "no"}) == namespace["H"](6, False)
    with pytest.raises(
        ConfigError, match="width='9' is out of range: expected an integer from 1 to 8"
    ):
        parse_fields(namespace["H"], {"width": "9"})


def test_serve_config_from_env():
    cfg = serve_config_from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "MODEL_SERVER_WORKERS": "2",
            "MODEL_SERVER_PRECISION": "fp32",
        }
    )
    assert (cfg.port, cfg.workers, cfg.precision) == (9000, 2, "fp32")
    assert serve_config_from_env({}) == ServeConfig()


def test_batch_transform_raises_the_payload_limit_unless_set():
    assert serve_config_from_env({"SAGEMAKER_BATCH": "true"}).max_payload_mb == 100
    env = {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"}
    assert serve_config_from_env(env).max_payload_mb == 20


def test_bad_env_names_the_variable():
    with pytest.raises(ConfigError, match="MODEL_SERVER_PRECISION='fp8'.*one of auto, fp32"):
        serve_config_from_env({"MODEL_SERVER_PRECISION": "fp8"})
    with pytest.raises(ConfigError, match="MODEL_SERVER_TORCHSCRIPT='sometimes'.*true or false"):
        serve_config_from_env({"MODEL_SERVER_TORCHSCRIPT": "sometimes"})
    assert serve_config_from_env({"MODEL_SERVER_TORCHSCRIPT": "false"}).torchscript is False


def test_describe_lists_every_field():
    rows = describe(TrainSettings)
    assert [r[0] for r in rows][:2] == ["model", "epochs"]
    assert [r[0] for r in describe(TextHyperparameters)][:2] == ["text_column", "label_column"]
    assert all(r[2] for r in rows)
    assert "MODEL_SERVER_WORKERS" in [r[0] for r in describe(ServeConfig)]


@pytest.mark.parametrize(
    "env,payload_mb,timeout,client_timeout",
    [
        ({}, 6, 60, 10),
        ({"MODEL_SERVER_MODE": "realtime"}, 6, 60, 10),
        ({"MODEL_SERVER_MODE": "serverless"}, 4, 60, 10),
        ({"MODEL_SERVER_MODE": "async"}, 1024, 3600, 60),
        ({"SAGEMAKER_BATCH": "true"}, 100, 600, 60),
        # batch transform is batch transform, whatever the model's mode says
        ({"SAGEMAKER_BATCH": "true", "MODEL_SERVER_MODE": "async"}, 100, 600, 60),
        # an async endpoint takes its own timeout, never the real-time one
        ({"MODEL_SERVER_MODE": "async", "MODEL_SERVER_TIMEOUT": "2"}, 1024, 3600, 60),
        ({"MODEL_SERVER_MODE": "async", "MODEL_SERVER_ASYNC_TIMEOUT": "900"}, 1024, 900, 60),
        (
            {
                "MODEL_SERVER_MODE": "async",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50",
                "MODEL_SERVER_CLIENT_TIMEOUT": "5",
            },
            50,
            3600,
            5,
        ),
        ({"MODEL_SERVER_TIMEOUT": "30", "MODEL_SERVER_CLIENT_TIMEOUT": "3"}, 6, 30, 3),
    ],
)
def test_each_endpoint_mode_has_its_own_limits(env, payload_mb, timeout, client_timeout):
    cfg = serve_config_from_env(env)
    assert (cfg.max_payload_mb, cfg.timeout, cfg.client_timeout) == (
        payload_mb,
        timeout,
        client_timeout,
    )


@pytest.mark.parametrize(
    "env,seconds",
    [
        ({}, 5),
        ({"MODEL_SERVER_MODE": "serverless"}, 4),
        ({"MODEL_SERVER_MODE": "async"}, 514),
        ({"SAGEMAKER_BATCH": "true"}, 52),
        ({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "10"}, 7),
    ],
)
def test_a_bodys_whole_arrival_is_bounded_by_the_modes_body_limit(env, seconds):
    """2 s, and 0.5 s per MB the mode lets a body hold."""
    assert serve_config_from_env(env).body_timeout == seconds


def test_serverless_runs_one_worker_on_the_cpu():
    cfg = serve_config_from_env({"MODEL_SERVER_MODE": "serverless"})
    assert (cfg.workers, cfg.device, cfg.kind) == (1, "cpu", "serverless")
    assert (
        serve_config_from_env(
            {"MODEL_SERVER_MODE": "serverless", "MODEL_SERVER_WORKERS": "2"}
        ).workers
        == 2
    )
    with pytest.raises(
        ConfigError, match="MODEL_SERVER_DEVICE=cuda .* serverless endpoint has no GPU"
    ):
        serve_config_from_env({"MODEL_SERVER_MODE": "serverless", "MODEL_SERVER_DEVICE": "cuda"})


def test_an_unknown_mode_names_the_choices():
    with pytest.raises(
        ConfigError, match="MODEL_SERVER_MODE='batch'.*one of realtime, async, serverless"
    ):
        serve_config_from_env({"MODEL_SERVER_MODE": "batch"})


@pytest.mark.parametrize(
    "env,mme",
    [
        ({}, False),
        ({"MODEL_SERVER_MULTI_MODEL": "true"}, True),
        ({"SAGEMAKER_MULTI_MODEL": "true"}, True),  # what SageMaker sets on an MME
        ({"SAGEMAKER_MULTI_MODEL": "True"}, True),
        ({"SAGEMAKER_MULTI_MODEL": "false", "MODEL_SERVER_MULTI_MODEL": "false"}, False),
    ],
)
def test_a_multi_model_endpoint_is_recognised_by_either_variable(env, mme):
    assert serve_config_from_env(env).mme is mme


def test_the_mme_memory_budget_is_a_checked_integer():
    assert serve_config_from_env({"MODEL_SERVER_MME_MEMORY_MB": "4096"}).mme_memory_mb == 4096
    with pytest.raises(ConfigError, match="MODEL_SERVER_MME_MEMORY_MB"):
        serve_config_from_env({"MODEL_SERVER_MME_MEMORY_MB": "-1"})
    with pytest.raises(ConfigError, match="MODEL_SERVER_MULTI_MODEL"):
        serve_config_from_env({"MODEL_SERVER_MULTI_MODEL": "maybe"})


# --- the parse rules, bounds and messages exactly (found by mutation testing) ----------
@dataclass(frozen=True)
class _Bounded:
    count: int = setting(2, "c", lo=1, hi=10)
    share: float = setting(0.5, "s", lo=0.0, hi=0.9)
    every: int = setting(0, "e", lo=0)
    name: str = setting("x", "n")
    on: bool = setting(False, "o")


@pytest.mark.parametrize(
    "raw,value",
    [
        ({"count": "1"}, 1),
        ({"count": "10"}, 10),
        ({"count": " 7 "}, 7),
        ({"share": "0"}, 0.0),
        ({"share": "0.9"}, 0.9),
        ({"every": "0"}, 0),
        ({"every": "123456789"}, 123456789),
    ],
)
def test_the_bounds_are_inclusive(raw, value):
    from sagemaker_platform.config import parse_fields

    ((key, _),) = raw.items()
    assert getattr(parse_fields(_Bounded, raw), key) == value


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"count": "0"}, "count='0' is out of range: expected an integer from 1 to 10"),
        ({"count": "11"}, "count='11' is out of range: expected an integer from 1 to 10"),
        ({"count": "1.5"}, "count='1.5' is not valid: expected an integer from 1 to 10"),
        ({"share": "0.95"}, "share='0.95' is out of range: expected a number from 0.0 to 0.9"),
        ({"share": "-0.1"}, "share='-0.1' is out of range: expected a number from 0.0 to 0.9"),
        ({"share": "half"}, "share='half' is not valid: expected a number from 0.0 to 0.9"),
        ({"share": "nan"}, "share='nan' is not valid: expected a number from 0.0 to 0.9"),
        ({"every": "-1"}, "every='-1' is out of range: expected an integer >= 0"),
        ({"on": "maybe"}, "on='maybe' is not valid: expected true or false"),
        ({"on": " "}, "on=' ' is not valid: expected true or false"),
    ],
)
def test_a_bad_value_gets_the_exact_message(raw, message):
    from sagemaker_platform.config import parse_fields

    with pytest.raises(ConfigError) as err:
        parse_fields(_Bounded, raw)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "text,value",
    [
        *[(t, True) for t in ("true", "1", "yes", "on", "TRUE", " Yes ", '"on"')],
        *[(t, False) for t in ("false", "0", "no", "off", "False", " OFF ", '"no"')],
    ],
)
def test_every_spelling_of_a_bool(text, value):
    from sagemaker_platform.config import parse_fields

    assert parse_fields(_Bounded, {"on": text}).on is value


@pytest.mark.parametrize(
    "text,value",
    [
        ('"abc"', "abc"),
        ('""', ""),
        ('"', '"'),
        ('  "a b"  ', "a b"),
        ('"a', '"a'),
        ('a"', 'a"'),
        (' "x" ', "x"),
        ("  plain  ", "plain"),
    ],
)
def test_a_string_loses_its_json_quotes_and_outer_blanks_only(text, value):
    from sagemaker_platform.config import parse_fields

    assert parse_fields(_Bounded, {"name": text}).name == value


def test_an_unknown_key_gets_the_exact_message_with_the_first_of_them():
    from sagemaker_platform.config import parse_fields

    with pytest.raises(ConfigError) as err:
        parse_fields(_Bounded, {"zeta": "1", "beta": "2", "count": "3"}, "setting")
    assert str(err.value) == "unknown setting 'beta'; known: count, every, name, on, share"
    with pytest.raises(ConfigError, match="^unknown hyperparameter 'x'; "):
        parse_fields(_Bounded, {"x": "1"})


def test_a_setting_of_another_type_is_refused_by_name():
    from sagemaker_platform.config import parse_fields

    @dataclass(frozen=True)
    class Listy:
        items: tuple = setting((), "i")

    with pytest.raises(TypeError) as err:
        parse_fields(Listy, {"items": "a"})
    assert str(err.value) == "setting 'items' has type tuple; use int, float, bool or str"


def test_describe_gives_each_settings_default_and_what_it_accepts():
    rows = {name: (default, text) for name, default, text in describe(_Bounded)}
    assert rows == {
        "count": ("2", "c (an integer from 1 to 10)"),
        "share": ("0.5", "s (a number from 0.0 to 0.9)"),
        "every": ("0", "e (an integer >= 0)"),
        "name": ("x", "n"),
        "on": ("False", "o (true or false)"),
    }
    serve = {name: (default, text) for name, default, text in describe(ServeConfig)}
    assert serve["MODEL_SERVER_DEVICE"][0] == "auto"
    assert serve["MODEL_SERVER_DEVICE"][1].endswith(" (one of auto, cuda, cpu)")
    assert serve["SAGEMAKER_BIND_TO_PORT"][1].endswith(" (an integer from 1 to 65535)")


@pytest.mark.parametrize(
    "env,max_records",
    [
        ({}, 10_000),
        ({"MODEL_SERVER_MODE": "serverless"}, 10_000),
        ({"MODEL_SERVER_MODE": "async"}, 100_000),
        ({"SAGEMAKER_BATCH": "true"}, 100_000),
        ({"SAGEMAKER_BATCH": "true", "MODEL_SERVER_MAX_RECORDS": "50"}, 50),
        ({"MODEL_SERVER_MAX_RECORDS": "1000000"}, 1_000_000),
    ],
)
def test_each_mode_has_its_own_record_limit(env, max_records):
    assert serve_config_from_env(env).max_records == max_records


def test_a_blank_variable_takes_the_modes_default():
    env = {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "  ",
        "MODEL_SERVER_TIMEOUT": " ",
        "MODEL_SERVER_CLIENT_TIMEOUT": "\t",
        "MODEL_SERVER_MAX_RECORDS": " ",
        "MODEL_SERVER_PRECISION": " ",
    }
    cfg = serve_config_from_env(env)
    assert (cfg.max_payload_mb, cfg.timeout, cfg.client_timeout, cfg.max_records) == (
        100,
        600,
        60,
        100_000,
    )
    assert cfg.precision == "auto"
    serverless = serve_config_from_env(
        {"MODEL_SERVER_MODE": "serverless", "MODEL_SERVER_WORKERS": " "}
    )
    assert serverless.workers == 1


def test_a_serverless_endpoint_refuses_cuda_with_the_exact_message():
    with pytest.raises(ConfigError) as err:
        serve_config_from_env({"MODEL_SERVER_MODE": "serverless", "MODEL_SERVER_DEVICE": "cuda"})
    assert (
        str(err.value) == "MODEL_SERVER_DEVICE=cuda is not valid: a serverless endpoint has no GPU"
    )
    cpu = {"MODEL_SERVER_MODE": "serverless", "MODEL_SERVER_DEVICE": "cpu"}
    assert serve_config_from_env(cpu).device == "cpu"
    assert serve_config_from_env({"MODEL_SERVER_DEVICE": "cuda"}).device == "cuda"


def test_the_serving_settings_come_from_the_process_environment(monkeypatch):
    monkeypatch.setenv("MODEL_SERVER_MODE", "async")
    monkeypatch.setenv("MODEL_SERVER_MAX_BATCH_SIZE", "8")
    cfg = serve_config_from_env()
    assert (cfg.kind, cfg.timeout, cfg.max_batch_size) == ("async", 3600, 8)
    monkeypatch.setenv("MODEL_SERVER_MAX_BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as err:
        serve_config_from_env()
    assert str(err.value) == (
        "MODEL_SERVER_MAX_BATCH_SIZE='0' is out of range: expected an integer from 1 to 4096"
    )


def test_a_union_setting_is_refused_with_or_without_postponed_annotations():
    """`int | None` has no __name__: it was parsed as a string when the plug-in's module
    did not postpone its annotations, and refused when it did."""
    from sagemaker_platform.config import parse_fields

    namespace: dict = {}
    exec(
        "from dataclasses import dataclass\n"
        "from sagemaker_platform.config import setting\n"
        "@dataclass(frozen=True)\n"
        "class H:\n"
        "    limit: int | None = setting(None, 'l')\n",
        namespace,
    )
    postponed: dict = {}
    exec(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from sagemaker_platform.config import setting\n"
        "@dataclass(frozen=True)\n"
        "class H:\n"
        "    limit: int | None = setting(None, 'l')\n",
        postponed,
    )
    for cls in (namespace["H"], postponed["H"]):
        with pytest.raises(TypeError) as err:
            parse_fields(cls, {"limit": "3"})
        assert str(err.value) == "setting 'limit' has type int | None; use int, float, bool or str"


def test_a_setting_without_a_default_is_described_with_none():
    from dataclasses import field

    meta = {"help": "h", "choices": (), "min": 1, "max": None, "env": "X_N"}

    @dataclass(frozen=True)
    class Required:
        n: int = field(metadata=meta)

    assert describe(Required) == [("X_N", "", "h (an integer >= 1)")]


def test_a_plugins_serving_settings_come_from_the_process_environment(monkeypatch):
    from sagemaker_platform.config import parse_env

    @dataclass(frozen=True)
    class Settings:
        size: int = setting(3, "s", lo=1, hi=9, env="X_TEST_SIZE")

    monkeypatch.setenv("X_TEST_SIZE", "7")
    assert parse_env(Settings).size == 7
    monkeypatch.setenv("X_TEST_SIZE", "  ")
    assert parse_env(Settings).size == 3
    assert parse_env(Settings, {"X_TEST_SIZE": "5"}).size == 5
