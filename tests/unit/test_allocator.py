"""The serving process's malloc keeps freed memory: counted in page faults, in processes of
their own (the setting is process-wide)."""

import json
import os
import subprocess
import sys

from tests.helpers import MODEL_DIR

# After `setup`, 20 times: allocates six 4 MB blocks (1,024 pages each), as a batch's
# activations are, then frees them all. Prints the page faults the 20 took and what the
# setting returned. glibc's default raises its thresholds to the largest block freed,
# 4 MB (mmap) and 8 MB (trim), so the 24 MB freed together are handed back each time.
SCRIPT = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
kept = None
{setup}
def batch():
    blocks = [bytearray(4 << 20) for _ in range(6)]  # zero-filled: every page touched
    del blocks
batch()  # the first batch faults its pages in whatever the setting
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    batch()
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({{"faults": after - before, "kept": kept}}))
"""


def faults(setup: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    clean = {k: v for k, v in clean.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(setup=setup), str(MODEL_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


KEEP = "from sagemaker_platform import allocator; kept = allocator.keep_freed_memory()"


def test_glibc_by_default_hands_large_blocks_back_and_faults_them_in_again():
    assert faults("")["faults"] > 10 * 1024


def test_kept_memory_is_reused_without_page_faults():
    got = faults(KEEP)
    assert got["kept"] is True
    assert got["faults"] < 1024  # fewer than one block's pages over 120 blocks


def test_a_bf16_worker_on_a_cpu_keeps_freed_memory_and_an_fp32_one_does_not():
    setup = "from sagemaker_platform.runtime import Runtime; Runtime.resolve('{}', 'cpu')"
    assert faults(setup.format("bf16"))["faults"] < 1024
    assert faults(setup.format("fp32"))["faults"] > 10 * 1024  # glibc's defaults


def test_malloc_settings_of_the_users_own_are_left_alone():
    got = faults(KEEP, GLIBC_TUNABLES="glibc.malloc.check=0")
    assert got["kept"] is False and got["faults"] > 10 * 1024
    assert faults(KEEP, MALLOC_ARENA_MAX="2")["kept"] is False
