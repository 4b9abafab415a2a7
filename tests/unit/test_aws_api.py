"""The API-model check every test's AWS requests go through (tests/aws_api.py) finds what
AWS refuses and botocore lets through: max lengths and counts, patterns, enums."""

import boto3
import pytest

from tests import aws_api

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"


def training_job(**changes) -> dict:
    request = {
        "TrainingJobName": "text-classifier-20250101-120000",
        "HyperParameters": {"epochs": "3"},
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "val_f1", "Regex": "val_f1=([0-9.]+)"}],
        },
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 50,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": {"MLFLOW_TRACKING_URI": "https://mlflow.example.com"},
    }
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = request
        for part in parents:
            node = node[part]
        node[last] = value
    return request


def test_a_valid_request_passes():
    assert aws_api.request_problems("sagemaker", "CreateTrainingJob", training_job()) == []


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"HyperParameters": {"backbone": "x" * 2501}},
         "HyperParameters.backbone: 2501 characters, at most 2500"),
        ({"HyperParameters": {f"k{i}": "1" for i in range(101)}},
         "HyperParameters: 101 entries, at most 100"),
        ({"HyperParameters": {"k" * 257: "1"}}, "characters, at most 256"),
        ({"Environment": {"MLFLOW_TRACKING_URI": "x" * 513}},
         "Environment.MLFLOW_TRACKING_URI: 513 characters, at most 512"),
        ({"Environment": {"BAD-NAME": "1"}}, "does not match the pattern"),
        ({"TrainingJobName": "under_score"}, "TrainingJobName: 'under_score' does not match"),
        ({"TrainingJobName": "a" * 64}, "TrainingJobName: 64 characters, at most 63"),
        ({"RoleArn": "arn:aws:iam::1234:role/R"}, "RoleArn: 'arn:aws:iam::1234:role/R' does not"),
        ({"ResourceConfig.InstanceType": "ml.g9.huge"}, "'ml.g9.huge' is not one of the"),
        ({"ResourceConfig.InstanceCount": "1"}, "InstanceCount: '1', expected a whole number"),
        ({"AlgorithmSpecification.MetricDefinitions": [{"Name": "m", "Regex": "r" * 501}]},
         "MetricDefinitions[0].Regex: 501 characters, at most 500"),
        ({"AlgorithmSpecification.MetricDefinitions": [{"Name": "m", "Regex": "x"}] * 41},
         "MetricDefinitions: 41 items, at most 40"),
        ({"AlgorithmSpecification.TrainingImage": "x" * 256},
         "TrainingImage: 256 characters, at most 255"),
        ({"OutputDataConfig.S3OutputPath": "s3://b/" + "o" * 1020},
         "S3OutputPath: 1027 characters, at most 1024"),
        ({"RoleArn": None}, "CreateTrainingJob.RoleArn: required, missing"),
        ({"EnableManagedSpotTraining": "true"}, "expected true or false"),
        ({"Unknown": 1}, "CreateTrainingJob.Unknown: no such member"),
    ],
)  # fmt: skip
def test_what_aws_refuses_is_named_by_its_path(changes, expected):
    found = aws_api.request_problems("sagemaker", "CreateTrainingJob", training_job(**changes))
    assert any(expected in line for line in found), found


def test_java_patterns_are_read():
    """AWS's patterns are Java's: \\p{Print}, \\A...\\z, surrogate-pair ranges."""
    ok = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/e/variant/AllTraffic",
          "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
          "PolicyName": "invocations-per-instance"}  # fmt: skip
    assert aws_api.request_problems("application-autoscaling", "PutScalingPolicy", ok) == []
    bad = {**ok, "PolicyName": "tab\there"}
    (found,) = aws_api.request_problems("application-autoscaling", "PutScalingPolicy", bad)
    assert "PolicyName" in found and "does not match" in found
    invoke = {"EndpointName": "e", "Body": b"{}", "InferenceId": " leading space"}
    (found,) = aws_api.request_problems("sagemaker-runtime", "InvokeEndpoint", invoke)
    assert "InferenceId" in found
    for pattern in (
        r"\p{Print}+",
        r"\A\S[\p{Print}]*\z",
        r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF]*",
    ):
        assert not aws_api.unreadable(pattern)


def test_a_dry_runs_placeholders_are_not_matched_against_patterns():
    request = training_job(RoleArn="arn:aws:iam::<account>:role/<role: --role>")
    request["AlgorithmSpecification"]["TrainingImage"] = "<image-uri: --image-uri or IMAGE_URI>"
    assert aws_api.request_problems("sagemaker", "CreateTrainingJob", request) == []


def test_every_client_call_of_the_test_process_is_checked(monkeypatch):
    """The session hook stops the call before botocore sends it, and the test fails."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("sagemaker", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(aws_api.AwsWouldRefuse, match="EndpointName: 'under_score'"):
        client.create_endpoint(EndpointName="under_score", EndpointConfigName="c")
    assert aws_api.violations() == [
        "CreateEndpoint.EndpointName: 'under_score' does not match the pattern "
        "'[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}'"
    ]
    aws_api.reset()  # found on purpose: this test passes
