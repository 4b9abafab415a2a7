"""Logging that reads well in CloudWatch: one line per event, metrics as name=value.

SageMaker turns any log line that matches a metric definition
(`[^A-Za-z0-9_]val_f1=NUMBER`, launcher/metrics.py) into a metric, and a tuning job
optimises it. So only the job's own metric lines may hold
`name=number`: every value that comes from outside the code (a file or folder name, a CSV
header, a hyperparameter, a library's message, an exception) is printed *inert*: an `=`
between a word character and a number is escaped as `\\=`, line breaks and other control
characters as `\\n`, `\\x1b`. The code's own templates and `kv` lines stay as written.
Log outside values as `%s` arguments or through `kv`, never pasted into the template.

A `kv` key may come from outside too (a `sagemaker_*` hyperparameter's name, a channel's):
`key` keeps ASCII letters, digits and `_` and escapes every other character (`=` as
`\\x3d`, a space as `\\x20`, a line break as `\\n`). No `=` is left in it, and every
escape ends in a letter or digit, so no metric name inside a key starts a word that a
definition's `\\bname=` could match.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

# Loggers whose templates are this code's own; everything else (Lightning, transformers,
# py.warnings, ...) is printed inert as a whole. `trust` adds a plug-in's package.
_TRUSTED = {"sagemaker_platform", "plugins", "train", "serve", "predictor", "wsgi", "__main__"}

# Breaks CloudWatch or a terminal would honour: C0 controls (tab kept), DEL, NEL, LS, PS.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), 127, 0x85] if c != 9}
_CONTROL.update({10: "\\n", 13: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
# `name=` then what a metric definition's number starts with: the only `=` a regex reads
# (or a value's last character, which the next value or the template might follow).
_METRIC_EQUALS = re.compile(r"(?<=\w)=(?=[-+.0-9]|\Z)")


def inert(text: object, keep_newlines: bool = False) -> str:
    """`text` as it may be printed: no line break, no `name=` for a metric regex to match."""
    table = {k: v for k, v in _CONTROL.items() if not (keep_newlines and k == 10)}
    return _METRIC_EQUALS.sub(r"\\=", str(text).translate(table))


_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def key(name: object) -> str:
    """`name` as a `name=value` key or a name in a message: `[A-Za-z0-9_]` kept, every
    other character escaped (see the module docstring)."""
    return "".join(
        c if c in _KEY_CHARACTERS else _CONTROL.get(ord(c)) or _escape(ord(c)) for c in str(name)
    )


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: object) -> str:
    """`text` with its line breaks and control characters escaped; `=` kept."""
    return str(text).translate(_CONTROL)


class Line(str):
    """A line this code composed (`kv`): printed as it is."""


def trust(package: str) -> None:
    """Treat `package`'s log templates as the code's own (a plug-in's, when loaded)."""
    _TRUSTED.add(package.split(".")[0])


class OneLineFormatter(logging.Formatter):
    """Every record one line, outside values inert (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)  # other handlers see the original
        record.exc_text = None  # formatted here, inert
        if record.name.split(".")[0] in _TRUSTED:
            if isinstance(record.args, dict):
                record.args = {k: _inert_arg(v) for k, v in record.args.items()}
            elif record.args:
                record.args = tuple(_inert_arg(a) for a in record.args)
            if not isinstance(record.msg, Line):
                record.msg = one_line(record.msg)
        else:
            record.msg, record.args = inert(record.getMessage()), None
        return super().format(record)

    def formatException(self, ei) -> str:
        # A traceback keeps its lines; the messages in it are outside values.
        return inert(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return inert(super().formatStack(stack_info), keep_newlines=True)


def _inert_arg(value: object) -> object:
    if isinstance(value, Line) or type(value) in (int, float, bool) or value is None:
        return value
    return inert(value)


def setup(level: str | None = None) -> None:
    level = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()


def quiet_libraries() -> None:
    """Libraries that chat at INFO, or draw progress bars, in a job log. Call again after
    importing Lightning: its import installs its own handler and level."""
    logging.captureWarnings(True)  # warnings name files and columns: print them inert
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # The platform sets the TensorBoard cadence from the channel's rows; a plug-in that
    # makes more or fewer examples than rows (windows, say) would get this at every start.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "urllib3")
    for name in (*names, "matplotlib"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.handlers[:] = []
        logger.propagate = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers_logging = sys.modules.get("transformers.utils.logging")
    if transformers_logging is not None:
        transformers_logging.disable_progress_bar()


def kv(**metrics: object) -> Line:
    """`epoch=2 val_f1=0.8312`: the format SageMaker metric definitions match. Numbers are
    printed as numbers; any other value (a path, a name, a hyperparameter) inert; every
    name through `key`."""
    parts = []
    for raw, value in metrics.items():
        name = key(raw)
        if isinstance(value, float):
            small = value != 0 and abs(value) < 1e-3
            parts.append(f"{name}={value:.3e}" if small else f"{name}={value:.4f}")
        elif type(value) in (int, bool) or value is None:
            parts.append(f"{name}={value}")
        else:
            parts.append(f"{name}={inert(value)}")
    return Line(" ".join(parts))
