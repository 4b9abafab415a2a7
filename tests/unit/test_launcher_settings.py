"""Region, role and image resolution, and the refusals that come before any request."""

import pytest

import launcher
from launcher.settings import LauncherError, check_name, check_s3_uri, resolve, split_s3_uri

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/text-classifier:latest"


def test_flags_win_over_the_environment():
    env = {"AWS_REGION": "us-east-1", "SAGEMAKER_ROLE_ARN": "x", "IMAGE_URI": "y"}
    target = resolve("eu-west-1", ROLE, IMAGE, need_role=True, need_image=True, env=env)
    assert (target.region, target.role, target.image_uri) == ("eu-west-1", ROLE, IMAGE)


def test_the_environment_fills_in():
    env = {"AWS_DEFAULT_REGION": "eu-west-1", "SAGEMAKER_ROLE_ARN": ROLE, "IMAGE_URI": IMAGE}
    target = resolve(need_role=True, need_image=True, env=env)
    assert (target.region, target.role, target.image_uri) == ("eu-west-1", ROLE, IMAGE)


def test_aws_region_comes_before_aws_default_region():
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert resolve(env=env).region == "eu-west-1"


def test_region_from_the_aws_config_file(offline_aws, tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert resolve().region == "ap-southeast-2"


def test_every_missing_setting_is_named_at_once(offline_aws):
    with pytest.raises(LauncherError) as err:
        resolve(need_role=True, need_image=True)
    message = str(err.value)
    assert "no AWS region: pass --region" in message
    assert "no IAM role" in message and "SAGEMAKER_ROLE_ARN" in message
    assert "no image URI" in message and "IMAGE_URI" in message


def test_role_and_image_are_optional_where_not_needed(offline_aws):
    assert resolve("us-east-1").role is None


@pytest.mark.parametrize(
    "role,image,message",
    [
        ("SageMakerExecution", IMAGE, "is not an IAM role ARN"),
        ("arn:aws:iam::123:role/x", IMAGE, "is not an IAM role ARN"),
        (ROLE, "https://example.com/image", "is not a registry/repository"),
        (ROLE, "text classifier", "is not a registry/repository"),
        (
            ROLE,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest",
            "is in ECR region us-east-1 but the launch targets eu-west-1",
        ),
    ],
)
def test_malformed_role_or_image_is_refused(role, image, message):
    with pytest.raises(LauncherError, match=message):
        resolve("eu-west-1", role, image, need_role=True, need_image=True, env={})


def test_images_outside_ecr_and_pinned_digests_pass():
    resolve("eu-west-1", ROLE, "registry.example.com:5000/team/tc:1.2", need_image=True, env={})
    resolve("eu-west-1", ROLE, IMAGE.replace(":latest", "@sha256:" + "a" * 64), env={})


def test_a_given_boto3_session_brings_its_region():
    import boto3

    session = boto3.Session(
        region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert resolve(boto_session=session, env={"AWS_REGION": "us-east-1"}).region == "eu-central-1"
    with pytest.raises(LauncherError, match="differs from the boto3 session's eu-central-1"):
        resolve("us-east-1", boto_session=session, env={})


def test_region_must_look_like_one():
    with pytest.raises(LauncherError, match="does not look like an AWS region"):
        resolve("useast1", env={})


def test_s3_uris_and_names():
    assert check_s3_uri("s3://bucket-1/a/b/", "x") == "s3://bucket-1/a/b/"
    assert split_s3_uri("s3://bucket-1/a/b.json") == ("bucket-1", "a/b.json")
    for bad in ("bucket/a", "s3:/bucket/a", "s3://B/a", "https://bucket/a"):
        with pytest.raises(LauncherError, match="is not an s3://"):
            check_s3_uri(bad, "train channel")
    assert check_s3_uri(None, "checkpoint", required=False) is None
    assert check_name("text-classifier-1", "name") == "text-classifier-1"
    for bad in ("-x", "x_y", "x" * 64, "x-"):
        with pytest.raises(LauncherError, match="is not a valid SageMaker name"):
            check_name(bad, "name")


# The public functions refuse before any request: the endpoint is a closed port, so a
# request sent first would raise a connection error, not LauncherError.
def test_train_without_role_is_refused_before_any_request(offline_aws):
    with pytest.raises(LauncherError, match="no IAM role"):
        launcher.train(train="s3://bucket/train/", region="us-east-1", image_uri=IMAGE)


def test_deploy_without_image_is_refused_before_any_request(offline_aws):
    with pytest.raises(LauncherError, match="no image URI"):
        launcher.deploy(training_job="job", region="us-east-1", role=ROLE)


def test_invoke_and_delete_without_region_are_refused_before_any_request(offline_aws):
    with pytest.raises(LauncherError, match="no AWS region"):
        launcher.invoke("endpoint", {"text": "hi"})
    with pytest.raises(LauncherError, match="no AWS region"):
        launcher.delete("endpoint")


def test_transform_needs_role_and_image_only_when_it_creates_a_model(offline_aws):
    with pytest.raises(LauncherError, match="no IAM role"):
        launcher.plan_transform(
            training_job="job",
            input_s3_uri="s3://bucket/in/",
            output_s3_uri="s3://bucket/out/",
            region="us-east-1",
            image_uri=IMAGE.replace("eu-west-1", "us-east-1"),
        )
    plan = launcher.plan_transform(
        model_name="existing-model",
        input_s3_uri="s3://bucket/in/",
        output_s3_uri="s3://bucket/out/",
        region="us-east-1",
        max_concurrent_transforms=1,
    )
    assert plan.model_name == "existing-model" and plan.target.role is None
