"""deploy/flink and deploy/dataflow cannot run here: check they parse and agree with the code."""

import argparse
import json
import re

import yaml

from pipeline.flink import FLINK_VERSION
from pipeline.options import WirenewsOptions
from tests.conftest import REPO

DEPLOY = REPO / "deploy"


PYPROJECT = (REPO / "pyproject.toml").read_text()  # read by pattern: tomllib needs 3.11


def _pinned_beam() -> str:
    (pin,) = re.findall(r'^\s*"(apache-beam\b[^"]*)",', PYPROJECT, flags=re.MULTILINE)
    found = re.fullmatch(r"apache-beam==(\d+\.\d+\.\d+)", pin)
    assert found, f"apache-beam must be pinned to one version (the Flink job server's): {pin}"
    return found[1]


def _run_flags() -> set[str]:
    parser = argparse.ArgumentParser()
    WirenewsOptions._add_argparse_args(parser)
    return {action.dest for action in parser._actions}


def test_flex_template_parameters_are_options_of_wirenews_run() -> None:
    metadata = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
    names = [p["name"] for p in metadata["parameters"]]
    assert {"source", "output"} <= set(names)
    assert len(names) == len(set(names))
    assert set(names) <= _run_flags()
    for parameter in metadata["parameters"]:
        assert parameter["label"]
        assert parameter["helpText"]
        assert parameter["isOptional"] == (parameter["name"] not in {"source", "output"})


def test_dockerfile_builds_on_the_sdk_image_of_the_pinned_beam() -> None:
    beam = _pinned_beam()
    dockerfile = (DEPLOY / "dataflow" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert re.fullmatch(r"apache/beam_python\$\{PYTHON_VERSION\}_sdk:" + re.escape(beam), base)
    assert re.findall(r"apache-beam(?:\[\w+\])?==([\d.]+)", dockerfile) == [beam]
    python = re.search(r"^ARG PYTHON_VERSION=(3\.\d+)$", dockerfile, flags=re.MULTILINE)
    assert python, "the Dockerfile names its Python version"
    requires = re.search(r'^requires-python = ">=3\.(\d+),<3\.(\d+)"', PYPROJECT, re.MULTILINE)
    assert requires
    low, high = requires.groups()
    assert int(low) <= int(python[1].split(".")[1]) < int(high)
    entry = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/wirenews/(\S+)", dockerfile)
    assert entry
    assert (REPO / entry[1]).is_file()


def test_flink_deployment_runs_the_pinned_flink_with_a_beam_worker_pool() -> None:
    (deployment,) = yaml.safe_load_all((DEPLOY / "flink" / "flinkdeployment.yaml").read_text())
    assert deployment["apiVersion"] == "flink.apache.org/v1beta1"
    assert deployment["kind"] == "FlinkDeployment"
    spec = deployment["spec"]
    assert spec["flinkVersion"] == "v" + FLINK_VERSION.replace(".", "_")
    assert spec["image"].startswith(f"flink:{FLINK_VERSION}")
    containers = spec["taskManager"]["podTemplate"]["spec"]["containers"]
    (pool,) = [c for c in containers if c["name"] == "beam-worker-pool"]
    assert pool["args"] == ["--worker_pool"]
    assert pool["ports"][0]["containerPort"] == 50000


def test_readmes_name_the_pinned_versions() -> None:
    beam = _pinned_beam()
    for folder in ("flink", "dataflow"):
        text = (DEPLOY / folder / "README.md").read_text()
        assert f"2.{beam.split('.')[1]}.0" in text, folder
        assert not re.findall(r"apache/beam_python[\d.]+_sdk:(?!" + re.escape(beam) + r")", text)
    assert f"Flink {FLINK_VERSION}" in (DEPLOY / "flink" / "README.md").read_text()
