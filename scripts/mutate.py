#!/usr/bin/env python3
"""`make mutate`: mutation testing of the platform and the plug-ins against the FAST tests.

    python scripts/mutate.py [MODULE ...] [--minutes N] [--jobs N] [--fresh]
    python scripts/mutate.py --report [MODULE ...]      # the last results, no run
    python scripts/mutate.py --show MUTANT              # one mutant's diff
    make mutate [MUTATE="codecs tabular/codecs"] [MUTATE_MINUTES=40] [MUTATE_JOBS=2]

mutmut (pinned in requirements-dev.txt, set up in pyproject's [tool.mutmut]) copies the
tree into mutants/, rewrites every function of model/sagemaker_platform and model/plugins
into its mutants (a `<` made `<=`, a constant changed, a string changed, a call's argument
dropped, ...), runs tests/unit once to learn which tests reach which function, then runs,
for each mutant of the chosen modules, the unit tests that reach its function. A mutant
that no test fails on "survived": a line that could be wrong without any fast test
noticing. The score printed per module is killed / checked.

MODULE: `codecs` (model/sagemaker_platform/codecs.py), `tabular/codecs`
(model/plugins/tabular/codecs.py), or a path, `codecs:csv_rows` or
`batching:BatchEngine.predict` for one function's mutants; `all` for every module. Without one, the
modules holding the limits and checks (DEFAULT). Each run re-tests every mutant of the
chosen modules against the tests as they are now; the time limit stops it where it is,
and what was left is reported as not checked (mutmut starts with the mutants whose
tests are quickest). --fresh drops mutants/ (after a change to a fixture or conftest:
mutmut caches which tests reach which function).

mutmut 3 names a mutant after its file's path (model.sagemaker_platform.codecs.x_f__mutmut_1)
and activates it by the function's module (sagemaker_platform.codecs, as the tests import
it through pytest's pythonpath): `_patch_mutmut` drops the leading `model.` so the two
agree, as mutmut does itself for a src/ layout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
PACKAGES = ("model/sagemaker_platform", "model/plugins")  # = [tool.mutmut] source_paths

# Where the limits, checks and escapes live: what a one-line slip would let through.
DEFAULT = (
    "codecs",
    "archives",
    "logs",
    "contract",
    "config",
    "artifacts",
    "batching",
    "channels",
    "registry",
    "text_classifier/codecs",
    "tabular/codecs",
    "image_classifier/codecs",
)

CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}


def _patch_mutmut() -> None:
    """mutmut's name for a mutant, from its file's path, with `model.` dropped."""
    import mutmut.__main__
    import mutmut.mutation.file_mutation
    from mutmut.utils import format_utils

    original = format_utils.get_mutant_name

    def get_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
        path = Path(relative_source_path)
        if path.parts[:1] == ("model",):
            path = Path(*path.parts[1:])
        return original(path, mutant_method_name)

    for module in (format_utils, mutmut.__main__, mutmut.mutation.file_mutation):
        module.get_mutant_name = get_mutant_name


def resolve(spec: str) -> Path:
    """`codecs`, `tabular/codecs`, `plugins/tabular/codecs.py` or a path: the file, relative
    to the repository."""
    name = spec.removesuffix(".py").removeprefix("model/")
    candidates = [
        Path("model") / f"{name}.py",
        Path("model/sagemaker_platform") / f"{name}.py",
        Path("model/plugins") / f"{name}.py",
    ]
    for path in candidates:
        if (ROOT / path).is_file() and str(path).startswith(PACKAGES):
            return path
    raise SystemExit(f"mutate: no module {spec!r} under {' or '.join(PACKAGES)}")


def every_module() -> list[Path]:
    return sorted(
        p.relative_to(ROOT)
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if p.name != "__init__.py"
    )


class Target(NamedTuple):
    """A module of a run, or one function of it (`logs:_escape`, `batching:BatchEngine._run`)."""

    path: Path
    function: str | None = None

    @classmethod
    def of(cls, spec: str) -> Target:
        module, _, function = spec.partition(":")
        return cls(resolve(module), function or None)

    @property
    def label(self) -> str:
        return str(self.path) + (f":{self.function}" if self.function else "")

    @property
    def glob(self) -> str:
        """The mutmut names of its mutants (see _patch_mutmut)."""
        module = ".".join(self.path.with_suffix("").parts[1:])
        if self.function is None:
            return f"{module}.*"
        owner, _, name = self.function.rpartition(".")
        return f"{module}.{f'xǁ{owner}ǁ{name}' if owner else f'x_{name}'}__mutmut_*"

    def results(self) -> dict[str, int | None]:
        return {k: v for k, v in load_results(self.path).items() if fnmatch(k, self.glob)}


def meta_path(path: Path) -> Path:
    return MUTANTS / f"{path}.meta"


def load_results(path: Path) -> dict[str, int | None]:
    try:
        return json.loads(meta_path(path).read_text())["exit_code_by_key"]
    except FileNotFoundError:
        return {}


def reset_results(targets: list[Target]) -> None:
    """Forget the verdicts of these targets, so a run stopped by the time limit reports
    what it did not reach as not checked, not as last time's verdict."""
    for target in targets:
        meta = meta_path(target.path)
        if meta.is_file():
            data = json.loads(meta.read_text())
            for key in data["exit_code_by_key"]:
                if fnmatch(key, target.glob):
                    data["exit_code_by_key"][key] = None
            meta.write_text(json.dumps(data, indent=4))


def status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def report(targets: list[Target], *, survivors: int = 12) -> tuple[int, int]:
    """Per module: killed/checked and the score; the survivors by name. Returns the totals."""
    total_caught = total_checked = 0
    lost = []
    print(f"\n{'module':52} {'killed/checked':>15} {'score':>6}  not checked")
    for target in targets:
        results = {key: status(code) for key, code in target.results().items()}
        counts = Counter(results.values())
        checked = sum(n for s, n in counts.items() if s not in {"not checked", "skipped"})
        caught = sum(counts[s] for s in CAUGHT)
        total_caught += caught
        total_checked += checked
        score = f"{100 * caught / checked:5.1f}%" if checked else "    -"
        print(f"{target.label:52} {f'{caught}/{checked}':>15} {score:>6}  {counts['not checked']}")
        lost += [f"  {s:9} {key}" for key, s in sorted(results.items()) if s not in CAUGHT]
    lost = [line for line in lost if "not checked" not in line]
    if total_checked:
        ratio = f"{total_caught}/{total_checked}"
        print(f"{'total':52} {ratio:>15} {100 * total_caught / total_checked:5.1f}%")
    if lost:
        print(f"\nsurvivors ({len(lost)}; `python scripts/mutate.py --show NAME` for a diff):")
        print("\n".join(lost[:survivors] if survivors else lost))
        if survivors and len(lost) > survivors:
            print(
                f"  ... and {len(lost) - survivors} more: scripts/mutate.py --report --all-survivors"
            )
    return total_caught, total_checked


def show(name: str) -> int:
    """The diff of one mutant, or of every survivor of a module (`--show codecs`)."""
    _patch_mutmut()
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    os.chdir(ROOT)
    try:
        targets = [Target.of(name)]
    except SystemExit:
        targets = [Target(path) for path in every_module()]
    for target in targets:
        path = target.path
        results = {key: status(code) for key, code in target.results().items()}
        if len(targets) > 1:
            names = [name] if name in results else []
        else:
            names = [k for k, s in sorted(results.items()) if s not in CAUGHT | {"not checked"}]
        for mutant in names:
            diff = get_diff_for_mutant(mutant, path=path).splitlines()[2:]  # no ---/+++
            print(f"# {mutant}: {results[mutant]}")
            print("\n".join(line for line in diff if line[:1] in "+-") + "\n")
    return 0


def _config_for_subprocesses() -> None:
    """A few unit tests start `python -c 'from sagemaker_platform import ...'` in model/
    (mutants/model here); while mutmut learns which tests reach which function, the
    mutated platform there asks for mutmut's settings in the working folder, and without
    any it stops (`Could not figure out where the code to mutate is`)."""
    folder = MUTANTS / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "setup.cfg").write_text(
        "# scripts/mutate.py: mutmut's settings for test subprocesses started in model/\n"
        "[mutmut]\nsource_paths=sagemaker_platform\n"
    )


def _forward(stream) -> None:
    """mutmut's output as it comes (its progress line redraws itself with \\r), less the
    verdict of every mutant by name it ends with: the report below says what matters."""
    out = sys.stdout.buffer
    tail = b""
    while chunk := stream.read1(4096):
        if tail is None:
            continue  # past "Mutant results": the list of every verdict
        tail += chunk
        cut = tail.find(b"Mutant results")
        if cut >= 0:
            out.write(tail[:cut])
            out.flush()
            tail = None
            continue
        keep = len(b"Mutant results")  # a marker split across two reads
        out.write(tail[:-keep])
        out.flush()
        tail = tail[-keep:]
    if tail:
        out.write(tail)
        out.flush()


def run_mutmut(targets: list[Target], jobs: int, minutes: float) -> int:
    """`mutmut run` over these modules' mutants in a process group of its own, stopped
    (with its workers) at the time limit."""
    code = (
        "import sys; sys.path.insert(0, 'scripts'); import mutate; mutate._patch_mutmut(); "
        "import mutmut.__main__ as m; m.cli(sys.argv[1:])"
    )
    argv = [sys.executable, "-c", code, "run", "--max-children", str(jobs)]
    argv += [t.glob for t in targets]
    proc = subprocess.Popen(
        argv, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    forward = threading.Thread(target=_forward, args=(proc.stdout,), daemon=True)
    forward.start()
    try:
        rc = proc.wait(timeout=minutes * 60)
        forward.join(timeout=10)
        return rc
    except subprocess.TimeoutExpired:
        print(f"\nmutate: the time limit ({minutes:g} min) ran out: stopping mutmut", flush=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 124


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="default: " + " ".join(DEFAULT))
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("MUTATE_MINUTES") or 40)
    )
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATE_JOBS") or 2))
    parser.add_argument("--fresh", action="store_true", help="drop mutants/ first")
    parser.add_argument("--report", action="store_true", help="print the last results only")
    parser.add_argument("--all-survivors", action="store_true")
    parser.add_argument(
        "--show", metavar="MUTANT", help="one mutant's diff, or a module's survivors' diffs"
    )
    args = parser.parse_args(argv)

    if args.show:
        return show(args.show)

    specs = args.modules or os.environ.get("MUTATE", "").split() or list(DEFAULT)
    if specs == ["all"]:
        targets = [Target(path) for path in every_module()]
    else:
        targets = [Target.of(spec) for spec in specs]
    if not args.report:
        if args.fresh:
            shutil.rmtree(MUTANTS, ignore_errors=True)
        reset_results(targets)
        _config_for_subprocesses()
        start = time.monotonic()
        print(
            f"mutate: {len(targets)} target(s), {args.jobs} job(s), at most {args.minutes:g} min",
            flush=True,
        )
        rc = run_mutmut(targets, args.jobs, args.minutes)
        print(f"mutate: mutmut exited {rc} after {(time.monotonic() - start) / 60:.1f} min")
        if rc not in (0, 124):
            return rc
    report(targets, survivors=0 if args.all_survivors else 12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
