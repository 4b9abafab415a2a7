"""Issue 24: payloads of any content type through `invoke` and `transform`, checked
against the plug-in when the launcher knows it, before any request (what reaches AWS:
tests/integration/test_launcher.py)."""

import pytest

import launcher
from launcher import invoking, payloads
from launcher.cli import main
from launcher.settings import LauncherError
from tests import outside_plugin

TRANSFORM = dict(model_name="m", input_s3_uri="s3://b-1/in/", output_s3_uri="s3://b-1/out/")
WHERE = dict(region="us-east-1")


@pytest.mark.parametrize(
    "name,expected",
    [
        ("cat.png", "image/png"),
        ("CAT.PNG", "image/png"),
        ("photo.jpg", "image/jpeg"),
        ("photo.jpeg", "image/jpeg"),
        ("features.npy", "application/x-npy"),
        ("clip.wav", "audio/wav"),
        ("shard-0001.tar", "application/x-tar"),  # from Python's own table
        ("scan.pdf", "application/pdf"),
        ("tickets.csv", "text/csv"),
        ("tickets.jsonl", "application/jsonlines"),
        ("request.json", "application/json"),
        ("note.txt", "text/plain"),
    ],
)
def test_content_type_from_the_file_extension(name, expected):
    assert payloads.content_type_for(name) == expected


@pytest.mark.parametrize("name", ["blob.xyz", "no-extension", "data.csv.gz"])
def test_an_unknown_extension_asks_for_the_content_type(name):
    with pytest.raises(LauncherError, match="pass --content-type"):
        payloads.content_type_for(name)


def test_extension_for_a_content_type():
    assert payloads.extension_for("image/png") == ".png"
    assert payloads.extension_for("application/x-npy") == ".npy"
    assert payloads.extension_for("Text/CSV; charset=utf-8") == ".csv"
    assert payloads.extension_for("application/x-unheard-of") == ""


@pytest.mark.parametrize(
    "value", ["image/png", "application/x-image", "text/csv; charset=utf-8", "audio/x-wav"]
)
def test_well_formed_media_types_pass(value):
    assert payloads.check_content_type(value) == value


@pytest.mark.parametrize(
    "value", ["png", "image/", "/png", "image png/x", "image/png\r\nX-Injected: 1", "", "a/b;"]
)
def test_malformed_media_types_are_refused(value):
    with pytest.raises(LauncherError, match="is not a media type"):
        payloads.check_content_type(value)


def test_binary_bodies_pass_through_byte_for_byte():
    body, kind = invoking.encode_payload(outside_plugin.PNG, "image/png")
    assert (body, kind) == (outside_plugin.PNG, "image/png")
    body, kind = invoking.encode_payload(b"\x93NUMPY\x01\x00", "application/x-npy")
    assert body == b"\x93NUMPY\x01\x00"
    assert invoking.encode_payload("héllo", "text/plain") == ("héllo".encode(), "text/plain")
    with pytest.raises(LauncherError, match="sent as application/json"):
        invoking.encode_payload({"a": 1}, "image/png")


def test_the_plugin_decides_which_types_go(png_plugin):
    assert invoking.encode_payload(outside_plugin.PNG, "image/png", png_plugin)[1] == "image/png"
    with pytest.raises(LauncherError, match="plug-in text_classifier reads application/json"):
        invoking.encode_payload(outside_plugin.PNG, "image/png", "text_classifier")
    with pytest.raises(LauncherError, match=f"plug-in {png_plugin} reads image/png"):
        invoking.encode_payload("a,b\n", "text/csv", png_plugin)
    with pytest.raises(LauncherError, match="no such plug-in"):
        invoking.encode_payload(outside_plugin.PNG, "image/png", "no_such_plugin_here")


def test_is_text():
    assert payloads.is_text(b'{"label": "cat"}')
    assert payloads.is_text("café\n".encode())
    assert not payloads.is_text(outside_plugin.PNG)
    assert not payloads.is_text(b"abc\x00def")


# --- batch transform ---------------------------------------------------------------------------
def test_transform_of_one_record_per_object():
    plan = launcher.plan_transform(**TRANSFORM, content_type="image/png", **WHERE)
    assert (plan.split_type, plan.assemble_with, plan.limits.api_batch_strategy) == (
        "None",
        "None",
        "SingleRecord",
    )
    assert plan.accept == "application/json"  # not image/png: the model answers JSON
    document = launcher.plan_transform(**TRANSFORM, content_type="application/json", **WHERE)
    assert (document.split_type, document.accept) == ("None", "application/json")
    lines = launcher.plan_transform(**TRANSFORM, content_type="text/csv", **WHERE)
    assert (lines.split_type, lines.assemble_with, lines.limits.api_batch_strategy) == (
        "Line",
        "Line",
        "MultiRecord",
    )


def test_transform_checks_types_against_the_named_plugin(png_plugin):
    plan = launcher.plan_transform(
        **TRANSFORM, content_type="application/x-image", model=png_plugin, **WHERE
    )
    assert (plan.content_type, plan.accept, plan.plugin) == (
        "application/x-image",
        "application/json",  # the plug-in's first answer type
        png_plugin,
    )
    with pytest.raises(LauncherError, match="content type 'image/png': plug-in text_classifier"):
        launcher.plan_transform(
            **TRANSFORM, content_type="image/png", model="text_classifier", **WHERE
        )
    with pytest.raises(LauncherError, match=f"accept 'text/csv': plug-in {png_plugin} answers"):
        launcher.plan_transform(
            **TRANSFORM, content_type="image/png", accept="text/csv", model=png_plugin, **WHERE
        )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(content_type="image"), "content type 'image' is not a media type"),
        (dict(content_type="image/png", input_filter="$[1:]"), "an input filter reads CSV or JSON"),
        (dict(content_type="image/png", join_source="Input"), "a join source reads CSV or JSON"),
        (
            dict(content_type="image/png", accept="image/png", output_filter="$.x"),
            "an output filter reads CSV or JSON",
        ),
        (dict(content_type="application/jsonlines", accept="image/png"), "answered line for line"),
        (dict(instance_type="ml.g5.xlarg"), "did you mean ml.g5.xlarge"),
    ],
)
def test_transform_refusals(overrides, message):
    with pytest.raises(LauncherError, match=message):
        launcher.plan_transform(**{**TRANSFORM, **overrides}, **WHERE)


def test_an_image_transform_may_still_filter_its_json_answers():
    plan = launcher.plan_transform(
        **TRANSFORM, content_type="image/png", join_source="None", output_filter="$.label", **WHERE
    )
    assert (plan.join_source, plan.output_filter) == ("None", "$.label")


def test_cli_refuses_a_type_the_plugin_does_not_read_before_any_request(offline_aws, capsys):
    argv = ["transform", "--model-name", "m", "--input", "s3://b-1/i/", "--output", "s3://b-1/o/"]
    argv += ["--region", "us-east-1"]
    assert main([*argv, "--content-type", "image/png", "--model", "tabular"]) == 2
    err = capsys.readouterr().err
    assert "content type 'image/png': plug-in tabular reads" in err
    assert err.count("\n") == 1 and "Traceback" not in err


# --- what else the launcher checks before sending ----------------------------------------------
@pytest.mark.parametrize(
    "launch,args",
    [
        (launcher.plan_training, dict(train="s3://b-1/t/", instance_type="ml.g5.xlarg")),
        (launcher.plan_deployment, dict(training_job="j", instance_type="ml.g5.xlarg")),
    ],
)
def test_instance_types_are_checked(launch, args):
    target = dict(
        region="us-east-1",
        role="arn:aws:iam::123456789012:role/R",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
    )
    with pytest.raises(LauncherError, match="'ml.g5.xlarg' is not a SageMaker .* did you mean"):
        launch(**args, **target)


@pytest.mark.parametrize("name", ["BAD-NAME", "1ST", "A B", ""])
def test_environment_names_are_checked(name):
    with pytest.raises(LauncherError, match="environment variable name"):
        launcher.plan_transform(**TRANSFORM, env={name: "1"}, **WHERE)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--endpoint", "bad_name", "--data", "{}"], "endpoint name 'bad_name' is not a valid SageMaker name"),
        (["--endpoint", "e", "--data", "{}", "--async-input-s3-uri", "s3://b-1"],
         "names a bucket"),
        (["--endpoint", "e", "--file", "no-such-file.png"], "--file 'no-such-file.png'"),
        (["--endpoint", "e", "--data", "{}", "--content-type", "json"], "is not a media type"),
    ],
)  # fmt: skip
def test_bad_invocations_are_refused_before_any_request(offline_aws, capsys, argv, message):
    assert main(["invoke", "--region", "us-east-1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_botocore_refusing_a_request_is_no_aws_answer(monkeypatch, capsys):
    from botocore.exceptions import ParamValidationError

    import launcher.cli

    def refused(args):
        raise ParamValidationError(report="Invalid length for parameter Key, value: 0")

    monkeypatch.setattr(launcher.cli, "run", refused)
    assert main(["metrics"]) == 2
    err = capsys.readouterr().err
    assert "Invalid length for parameter Key" in err and "AWS said" not in err
