"""Issue 25's launcher side, checked before any request: multi-model endpoints (deploy
--multi-model, invoke --target-model, add-model), inference components (deploy
--component, invoke --component, per-component autoscaling, delete --component) and
their dry runs. What reaches AWS: tests/integration/test_launcher.py (moto)."""

import json
import socket

import pytest

import launcher
from launcher import autoscaling, multimodel, params
from launcher.cli import main
from launcher.settings import LauncherError, _instance_types, is_accelerated
from sagemaker_platform import contract
from sagemaker_platform.config import serve_config_from_env

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest-cpu"
WHERE = ["--region", "us-east-1", "--role", ROLE, "--image-uri", IMAGE]
TARGET = dict(region="us-east-1", role=ROLE, image_uri=IMAGE)
MME = ["deploy", "--multi-model", "--model-prefix", "s3://b-1/models/"]
COMPONENT = ["deploy", "--training-job", "j", "--component", "c-1", "--endpoint", "shared"]
WITH_MEMORY = [*COMPONENT, "--memory-mb", "1024"]
INVOKE = ["invoke", "--endpoint", "e-1", "--data", "{}"]
ADD = ["add-model", "--training-job", "j", "--to", "s3://b-1/models/"]


@pytest.fixture
def no_aws(offline_aws, monkeypatch):
    """offline_aws without credentials, and no socket may connect anywhere."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise ConnectionRefusedError(f"test: no connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"tried to connect to {attempts}"


def dry(capsys, *argv) -> dict:
    code = main([*argv, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def requests_of(printed: dict) -> dict[str, dict]:
    return {r["operation"]: r["params"] for r in printed["requests"]}


# --- instance families ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "instance_type",
    ["ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g6e.2xlarge", "ml.p3.2xlarge", "ml.p5.48xlarge",
     "ml.p6-b200.48xlarge", "ml.inf1.xlarge", "ml.inf2.xlarge", "ml.trn1.2xlarge",
     "ml.dl1.24xlarge"],
)  # fmt: skip
def test_gpu_and_accelerator_families_are_known(instance_type):
    assert is_accelerated(instance_type)


def test_cpu_families_are_not_accelerated_graviton_included():
    cpu = [t for t in _instance_types("endpoint") if not is_accelerated(t)]
    families = {t.split(".")[1] for t in cpu}
    assert {"m5", "c5", "r5", "t2", "m6g", "c6gn", "r7gd", "c7i"} <= families
    assert not any(f.startswith(("g", "p", "inf", "trn", "dl")) for f in families)


# --- target models -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["customer-42.tar.gz", "eu/customer 42.tar.gz", "x", "a" * 1024, "v2/m.tar.gz"]
)
def test_target_models_sagemaker_takes(name):
    assert multimodel.check_target_model(name) == name


@pytest.mark.parametrize(
    "name,message",
    [
        ("", "expected the model's key"),
        (None, "expected the model's key"),
        ("a" * 1025, "1025 characters, SageMaker takes at most 1024"),
        ("/abs.tar.gz", "without a leading /"),
        ("eu/", "names a folder"),
        ("../x.tar.gz", "'..' parts"),
        ("a/./x.tar.gz", "'..' parts"),
        ("a//x.tar.gz", "'..' parts"),
        ("s3://b-1/models/x.tar.gz", "not a URI"),
        ("https://example.com/x.tar.gz", "not a URI"),
        ("x.tar.gz\nX-Other: 1", "printable ASCII"),
        ("x\x00.tar.gz", "printable ASCII"),
        ("\u00e9.tar.gz", "printable ASCII"),
        (" x.tar.gz", "not starting with a space"),
    ],
)
def test_bad_target_models_name_the_rule(name, message):
    with pytest.raises(LauncherError, match=message) as caught:
        multimodel.check_target_model(name)
    assert "\n" not in str(caught.value)  # one line, whatever the name held


def test_an_added_model_is_a_tar_gz():
    assert multimodel.check_model_name("eu/customer-42.tar.gz") == "eu/customer-42.tar.gz"
    for name in ("customer-42.zip", "eu/.tar.gz", "customer-42"):
        with pytest.raises(LauncherError, match="loads .tar.gz archives"):
            multimodel.check_model_name(name)


# --- the request builders ------------------------------------------------------------------
def test_multi_model_plan_serves_the_prefix_on_a_cpu_type():
    plan = launcher.plan_deployment(multi_model=True, model_prefix="s3://b-1/m/", **TARGET)
    assert (plan.multi_model, plan.model_data, plan.instance_type) == (
        True,
        "s3://b-1/m/",
        "ml.m5.xlarge",
    )
    assert plan.environment == {"MODEL_SERVER_MODE": "realtime", "MODEL_SERVER_MULTI_MODEL": "true"}
    single = launcher.plan_deployment(training_job="j", **TARGET)
    assert (single.multi_model, single.instance_type) == (False, "ml.g5.xlarge")
    assert params.MULTI_MODEL_ENV not in single.environment


def test_the_multi_model_variable_is_the_serving_sides():
    """The name `serve` reads: the platform's contract spells it, the launcher sets it."""
    assert params.MULTI_MODEL_ENV == contract.MULTI_MODEL_ENV == "MODEL_SERVER_MULTI_MODEL"
    env = params.serving_environment({}, None, mode="realtime", multi_model=True)
    assert serve_config_from_env(env).mme
    assert params.MULTI_MODEL_ENV not in params.serving_knobs().values()  # no knob flag of its own


def test_component_plan_builds_the_specification_and_the_endpoint_variant():
    plan = launcher.plan_component(
        name="c-1", endpoint="shared", model_data="s3://b-1/m.tar.gz", copies=2, memory_mb=2048,
        cpus=0.5, accelerators=1, create_endpoint=True, instance_type="ml.g5.12xlarge",
        instance_count=2, min_instances=1, max_instances=4, min_copies=2, max_copies=8,
        target_invocations_per_copy=30, **TARGET,
    )  # fmt: skip
    assert plan.specification() == {
        "ModelName": "c-1",
        "ComputeResourceRequirements": {
            "MinMemoryRequiredInMb": 2048,
            "NumberOfCpuCoresRequired": 0.5,
            "NumberOfAcceleratorDevicesRequired": 1,
        },
    }
    assert plan.new_endpoint.variant() == {
        "VariantName": "AllTraffic",
        "InstanceType": "ml.g5.12xlarge",
        "InitialInstanceCount": 2,
        "ManagedInstanceScaling": {
            "Status": "ENABLED",
            "MinInstanceCount": 1,
            "MaxInstanceCount": 4,
        },
    }
    assert plan.scaling == autoscaling.ScalingPlan(
        2, 8, autoscaling.COPIES_METRIC, 30.0, 300, 300, "copies"
    )
    assert plan.environment == {"MODEL_SERVER_MODE": "realtime"}
    bare = launcher.plan_component(
        name="c-1", endpoint="shared", training_job="j", memory_mb=512, **TARGET
    )
    assert bare.specification()["ComputeResourceRequirements"] == {"MinMemoryRequiredInMb": 512}
    assert (bare.copies, bare.new_endpoint, bare.scaling) == (1, None, None)


# --- refused before any request, one line, exit 2 -------------------------------------------
@pytest.mark.parametrize(
    "argv,message",
    [
        ([*MME, "--instance-type", "ml.g5.xlarge"],
         "on CPU instances only; use the CPU image (build_and_push.sh --cpu)"),
        ([*MME, "--instance-type", "ml.inf2.xlarge"], "on CPU instances only"),
        (["deploy", "--multi-model", "--model-prefix", "s3://b-1/models"], "end it with /"),
        (["deploy", "--multi-model", "--model-prefix", "b-1/models/"], "is not an s3://"),
        (["deploy", "--multi-model", "--training-job", "j"], "add models there with `add-model`"),
        (["deploy", "--model-prefix", "s3://b-1/models/"], "add --multi-model"),
        ([*MME, "--mode", "async", "--async-output-s3-uri", "s3://b-1/o/"],
         "InvokeEndpointAsync takes no target model"),
        ([*MME, "--mode", "serverless"], "not host multi-model endpoints on serverless"),
        ([*MME, "--env", "MODEL_SERVER_MULTI_MODEL=true"], "set by a multi-model deploy"),
        (["deploy", "--training-job", "j", "--env", "SAGEMAKER_MULTI_MODEL=true"],
         "set by SageMaker itself"),
        ([*INVOKE, "--target-model", "/x.tar.gz"], "without a leading /"),
        ([*INVOKE, "--target-model", "x.tar.gz", "--async-input-s3-uri", "s3://b-1/in/"],
         "--target-model: asynchronous requests go to a whole endpoint"),
        ([*INVOKE, "--component", "c-1", "--async-input-s3-uri", "s3://b-1/in/"],
         "--component: asynchronous requests"),
        ([*INVOKE, "--component", "c_1"], "component name 'c_1' is not a valid SageMaker name"),
        ([*ADD, "--name", "customer-42"], "end it with .tar.gz"),
        ([*ADD, "--name", "../customer-42.tar.gz"], "'..' parts"),
        (["add-model", "--training-job", "j", "--to", "s3://b-1/models"], "end it with /"),
        ([*ADD, "--name", "a" * 1012 + ".tar.gz"], "S3 keys take at most 1024 bytes"),
        (["add-model", "--from", "s3://b-1/m.zip", "--to", "s3://b-1/models/"],
         "expected a .tar.gz archive"),
        (["add-model", "--from", "s3://b-1/out/model.tar.gz", "--to", "s3://b-1/models/"],
         "--name customer-42.tar.gz"),
        (COMPONENT, "give --memory-mb"),
        ([*COMPONENT, "--memory-mb", "64"], "memory MB 64: expected a whole number >= 128"),
        ([*WITH_MEMORY, "--cpus", "0.1"], "cpus 0.1: expected a number of cores >= 0.25"),
        ([*WITH_MEMORY, "--accelerators", "0"], "accelerators 0: expected a whole number >= 1"),
        ([*WITH_MEMORY, "--copies", "0"], "copies 0: expected a whole number >= 1"),
        ([*WITH_MEMORY, "--create-endpoint", "--instance-type", "ml.m5.xlarge",
          "--accelerators", "1"], "instance type ml.m5.xlarge has none"),
        ([*WITH_MEMORY, "--instance-type", "ml.m5.xlarge"], "add --create-endpoint"),
        ([*WITH_MEMORY, "--create-endpoint", "--min-instances", "1"], "needs both min and max"),
        ([*WITH_MEMORY, "--create-endpoint", "--instance-count", "3", "--min-instances", "1",
          "--max-instances", "2"], "instance count 3 is outside the range 1-2"),
        ([*WITH_MEMORY, "--min-copies", "1"], "needs both min and max copies"),
        ([*WITH_MEMORY, "--min-copies", "0", "--max-copies", "2",
          "--target-invocations-per-copy", "5"], "min copies 0"),
        ([*WITH_MEMORY, "--min-copies", "1", "--max-copies", "3"],
         "needs --target-invocations-per-copy"),
        ([*WITH_MEMORY, "--copies", "5", "--min-copies", "1", "--max-copies", "3",
          "--target-invocations-per-copy", "5"], "copies 5 is outside the autoscaling range"),
        ([*WITH_MEMORY, "--min-copies", "1", "--max-copies", "2", "--target-invocations-per-copy",
          "5", "--no-wait"], "drop --no-wait"),
        ([*WITH_MEMORY, "--create-endpoint", "--no-wait"], "drop --no-wait"),
        ([*WITH_MEMORY, "--name", "x"], "--name (the component's name is --component)"),
        ([*WITH_MEMORY, "--multi-model"], "--multi-model: not for an inference component"),
        ([*WITH_MEMORY, "--mode", "async"], "inference components are invoked in real time"),
        ([*WITH_MEMORY, "--target-invocations-per-instance", "5"], "--target-invocations-per-copy"),
        (["deploy", "--training-job", "j", "--component", "c-1", "--memory-mb", "512"],
         "--component needs --endpoint"),
        (["deploy", "--training-job", "j", "--copies", "2"],
         "--copies: an inference component's: add --component NAME"),
        (["deploy", "--training-job", "j", "--endpoint", "shared"], "--endpoint: an inference"),
        ([*WITH_MEMORY[:4], "bad_name", *WITH_MEMORY[5:]], "component name 'bad_name'"),
        (["autoscale", "--component", "c-1", "--min-instances", "1"],
         "a component scales by copies"),
        (["autoscale", "--endpoint", "e-1", "--min-copies", "1"], "(--component)"),
        (["autoscale", "--component", "c-1"], "give min and max copies"),
        (["delete", "--component", "c_1"], "component name 'c_1'"),
    ],
)  # fmt: skip
def test_bad_many_model_options_exit_2_before_any_request(offline_aws, capsys, argv, message):
    where = WHERE if argv[0] == "deploy" else WHERE[:2]  # role and image are deploy's
    assert main([*argv, *where]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line


# --- dry runs --------------------------------------------------------------------------------
def test_multi_model_deploy_dry_run(no_aws, capsys):
    printed = dry(capsys, *MME, "--name", "mme-1", "--instance-count", "2", "--min-instances",
                  "2", "--max-instances", "4", "--target-invocations-per-instance", "300")  # fmt: skip
    sent = requests_of(printed)
    assert list(sent) == [
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ]
    container = sent["CreateModel"]["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == "s3://b-1/models/"
    assert container["Environment"]["MODEL_SERVER_MULTI_MODEL"] == "true"
    assert sent["CreateEndpointConfig"]["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"
    assert printed["reads"][0]["operation"] != "DescribeTrainingJob"  # no model of its own


def test_component_dry_runs(no_aws, capsys):
    printed = dry(capsys, *WITH_MEMORY, "--copies", "2", "--min-copies", "1", "--max-copies",
                  "4", "--target-invocations-per-copy", "60")  # fmt: skip
    sent = requests_of(printed)
    assert list(sent) == [
        "CreateModel",
        "CreateInferenceComponent",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ]
    component = sent["CreateInferenceComponent"]
    assert (component["EndpointName"], component["RuntimeConfig"]) == ("shared", {"CopyCount": 2})
    # The variant is the endpoint's, which only AWS knows: a placeholder names it.
    assert component["VariantName"].startswith("<variant of endpoint config")
    assert sent["RegisterScalableTarget"]["ResourceId"] == "inference-component/c-1"
    assert [r["operation"] for r in printed["reads"]][:2] == [
        "DescribeEndpoint",
        "DescribeEndpointConfig",
    ]
    printed = dry(capsys, *WITH_MEMORY, "--create-endpoint", "--instance-type", "ml.c5.xlarge")
    sent = requests_of(printed)
    assert list(sent) == [
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "CreateInferenceComponent",
    ]
    assert sent["CreateEndpointConfig"]["ExecutionRoleArn"].startswith("arn:aws:iam::<account>")
    assert "ModelName" not in sent["CreateEndpointConfig"]["ProductionVariants"][0]


def test_invoke_add_model_and_delete_dry_runs(no_aws, capsys):
    invoked = requests_of(dry(capsys, *INVOKE, "--target-model", "eu/c-42.tar.gz"))
    assert invoked["InvokeEndpoint"]["TargetModel"] == "eu/c-42.tar.gz"
    invoked = requests_of(dry(capsys, *INVOKE, "--component", "c-1"))
    assert invoked["InvokeEndpoint"]["InferenceComponentName"] == "c-1"

    printed = dry(capsys, *ADD, "--name", "customer-42.tar.gz")
    assert requests_of(printed)["CopyObject"] == {
        "Bucket": "b-1",
        "Key": "models/customer-42.tar.gz",
        "CopySource": "<model.tar.gz of training job j>",
        "IfNoneMatch": "*",
    }
    printed = dry(capsys, "add-model", "--from", "s3://b-2/out/c-7.tar.gz", "--to",
                  "s3://b-1/models/", "--overwrite")  # fmt: skip
    assert requests_of(printed)["CopyObject"] == {
        "Bucket": "b-1",
        "Key": "models/c-7.tar.gz",
        "CopySource": {"Bucket": "b-2", "Key": "out/c-7.tar.gz"},
    }

    printed = dry(capsys, "delete", "--component", "c-1")
    assert list(requests_of(printed)) == ["DeleteInferenceComponent", "DeleteModel"]
    printed = dry(capsys, "delete", "--component", "c-1", "--keep-model")
    assert list(requests_of(printed)) == ["DeleteInferenceComponent"]
    printed = dry(capsys, "delete", "--endpoint", "e-1")
    assert list(requests_of(printed)) == ["DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]


def test_autoscale_dry_runs(no_aws, capsys):
    printed = dry(capsys, "autoscale", "--component", "c-1", "--min-copies", "1",
                  "--max-copies", "3", "--target-invocations-per-copy", "10")  # fmt: skip
    sent = requests_of(printed)
    assert list(sent) == ["RegisterScalableTarget", "PutScalingPolicy"]
    assert sent["RegisterScalableTarget"] == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "inference-component/c-1",
        "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
        "MinCapacity": 1,
        "MaxCapacity": 3,
    }
    printed = dry(capsys, "autoscale", "--endpoint", "e-1", "--min-instances", "1",
                  "--max-instances", "3", "--target-invocations-per-instance", "10")  # fmt: skip
    assert list(requests_of(printed)) == ["RegisterScalableTarget", "PutScalingPolicy"]


class StubbedSession:
    """A boto3 session whose SageMaker client answers from a botocore Stubber."""

    region_name = "us-east-1"

    def __init__(self):
        import boto3
        from botocore.stub import Stubber

        self.sagemaker = boto3.Session(region_name="us-east-1").client("sagemaker")
        self.stubber = Stubber(self.sagemaker)

    def client(self, service: str):
        assert service == "sagemaker", f"unexpected {service} request"
        return self.sagemaker


@pytest.mark.parametrize("status", ["Failed", "OutOfService", "Deleting"])
def test_a_component_is_refused_on_an_endpoint_that_cannot_take_it(offline_aws, status):
    session = StubbedSession()
    session.stubber.add_response(
        "describe_endpoint",
        {
            "EndpointName": "shared",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/shared",
            "EndpointConfigName": "shared",
            "EndpointStatus": status,
            "CreationTime": 0,
            "LastModifiedTime": 0,
        },
        {"EndpointName": "shared"},
    )
    with session.stubber, pytest.raises(LauncherError, match=f"endpoint shared is {status}"):
        launcher.deploy_component(
            name="c-1", endpoint="shared", model_data="s3://b-1/m.tar.gz", memory_mb=512,
            boto_session=session, role=ROLE, image_uri=IMAGE,
        )  # fmt: skip
    session.stubber.assert_no_pending_responses()  # and nothing after it: no model created
