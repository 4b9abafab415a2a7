"""Issue 26: each metric definition reads the same value in three regex engines.

SageMaker does not document which engine reads MetricDefinitions' regexes. The launcher's
use only what POSIX extended regular expressions, Java's java.util.regex and Python's `re`
read alike (launcher/metrics.py; the static check is in tests/unit/test_launcher_metrics.py),
and here each regex runs on the platform's real log lines in all three: Python's `re`,
Java's Pattern/Matcher (the JDK's single-file launcher: `java R.java`) and GNU sed in
`--posix -E` mode (POSIX ERE without GNU's extensions such as \\b). Each must find the
same first group, or none, on every line.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from launcher import metrics
from sagemaker_platform import logs
from sagemaker_platform.hyperparameters import parse

PREFIX = "2025-01-01T12:00:00 INFO train: "
LINES = [
    PREFIX
    + logs.kv(
        epoch=2,
        train_loss=0.0000512,
        val_loss=0.38,
        val_accuracy=0.86,
        val_f1=0.83,
        val_rmse=41250.5,
        val_mae=30100.25,
        train_samples_per_sec=45.12,
    ),
    PREFIX + logs.kv(epoch=1, step=10, batch="2/10", loss=0.51, lr=1e-4),
    PREFIX + "result " + logs.kv(best_epoch=3, val_accuracy=0.9, val_f1=0.88, train_seconds=12.5),
    PREFIX + "hyperparameters " + logs.kv(**parse({}).log_values()),
    PREFIX + logs.kv(val_loss=-1.5e-7, train_loss=12.0, val_f1=1, val_rmse=3.25e12, val_mae=-3),
    PREFIX + logs.kv(file="\nepoch=99 val_f1=0.999", val_f1=0.5),  # a value forging a line
    "epoch=7 val_f1=0.7",  # no prefix: read by none of the three
]

JAVA = """
import java.io.*;
import java.util.regex.*;
public class R {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        for (String row; (row = in.readLine()) != null; ) {
            String[] parts = row.split("\\t", 2);
            Matcher m = Pattern.compile(parts[0]).matcher(parts[1]);
            System.out.println(m.find() ? m.group(1) : "<none>");
        }
    }
}
"""


def python_reads(regex: str, line: str) -> str | None:
    match = re.search(regex, line)
    return match.group(1) if match else None


def cases() -> list[tuple[str, str]]:
    return [(d["Regex"], line) for d in metrics.metric_definitions() for line in LINES]


def test_every_case_is_one_line():
    assert all("\n" not in line and "\t" not in line for _, line in cases())
    assert {python_reads(r, LINES[0]) for r, _ in cases()} >= {"2", "5.120e-05", "0.3800"}


@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime on this machine")
def test_java_reads_what_python_reads(tmp_path):
    source = tmp_path / "R.java"
    source.write_text(JAVA)
    rows = "".join(f"{regex}\t{line}\n" for regex, line in cases())
    result = subprocess.run(
        ["java", str(source)], input=rows, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    java = [None if v == "<none>" else v for v in result.stdout.splitlines()]
    assert java == [python_reads(regex, line) for regex, line in cases()]


@pytest.mark.skipif(shutil.which("sed") is None, reason="no sed on this machine")
def test_posix_ere_reads_what_python_reads(tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("".join(line + "\n" for line in LINES))
    for definition in metrics.metric_definitions():
        regex = definition["Regex"].replace("/", "\\/")
        result = subprocess.run(
            ["sed", "--posix", "-E", f"s/{regex}/<<<\\1>>>/", str(text)],
            capture_output=True,
            text=True,
            timeout=30,
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, (definition, result.stderr)
        posix = [
            m.group(1) if (m := re.search("<<<(.*?)>>>", out)) else None
            for out in result.stdout.splitlines()
        ]
        assert posix == [python_reads(definition["Regex"], line) for line in LINES], definition
