"""Speed of the CLI as whole processes: `--help`, the offline `plan`, and the import floor.

    python benchmarks/bench.py [--runs 7]

Prints the median wall time and peak memory (max RSS) of each, and checks them against the
targets: `--help` ≤ 0.25 s; `plan` ≤ 1.5 × the time of importing the Pulumi packages it uses,
and ≤ 100 MiB. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What `plan` of the example loads from the Pulumi packages: pulumi_gcp loads a submodule on
# first use of one of its classes, so the floor uses the same classes the program does.
# (pulumi_cloudflare is loaded only with a Cloudflare domain.)
IMPORT_FLOOR = (
    "import pulumi, pulumi.runtime.mocks, pulumi_docker\n"
    "from pulumi_gcp import artifactregistry, cloudrunv2, organizations, serviceaccount\n"
    "artifactregistry.Repository, cloudrunv2.Service, cloudrunv2.ServiceIamMember\n"
    "organizations.get_client_config_output, serviceaccount.Account"
)


def measure(argv: list[str], runs: int) -> tuple[float, float]:
    """Median seconds and median peak MiB of `argv` run `runs` times."""
    times, peaks = [], []
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "bench-project-1"}
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(argv)} failed")
    return statistics.median(times), statistics.median(peaks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    cli = shutil.which("stx-pulumi") or str(Path(sys.executable).parent / "stx-pulumi")
    floor_s, floor_mib = measure([sys.executable, "-c", IMPORT_FLOOR], runs)
    help_s, help_mib = measure([cli, "--help"], runs)
    plan_s, plan_mib = measure([cli, "plan", "examples/hello-course", "--json"], runs)
    rows = [
        ("import floor", floor_s, floor_mib, ""),
        ("--help", help_s, help_mib, "≤ 0.25 s"),
        ("plan --json", plan_s, plan_mib, f"≤ {1.5 * floor_s:.2f} s (1.5 × floor), ≤ 100 MiB"),
    ]
    print(f"{'what':<14}{'median s':>10}{'peak MiB':>10}  target  (runs={runs})")
    for name, secs, mib, target in rows:
        print(f"{name:<14}{secs:>10.3f}{mib:>10.1f}  {target}")
    ok = help_s <= 0.25 and plan_s <= 1.5 * floor_s and plan_mib <= 100
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
