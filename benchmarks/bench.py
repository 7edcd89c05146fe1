"""Speed of stx-pulumi, as ratios measured in one run on this machine (never timed tests).

    python benchmarks/bench.py [--runs 5] [--only NAME ...]

- help:      `--help` ≤ 0.25 s.
- plan:      `plan` of the example in a fresh shell (gcloud installed, no GOOGLE_CLOUD_PROJECT)
             ≤ 1.5 × the time of importing the Pulumi classes it uses, ≤ 100 MiB.
- preflight: up's checks with stand-in Google endpoints that each answer after 0.5 s
             ≤ the slowest single check + 0.2 s.
- scale-up:  a scale-only `up` (--max changed, nothing else) ≤ 1.2 × the same update made by a
             bare Automation API script (select the stack, up the same program), both on the
             tests' stand-in engine.
- scan:      reading a 20,000-file build context (secrets, keys, heavy folders, the content
             tag) < 2 s.
- fleet:     with the stand-in engine at 1 s per resource operation, `up --all` of 8 apps
             with --parallel 4 ≤ 2.5 × one app's `up`, its process ≤ 300 MiB at its peak;
             `status --no-check` of 8 apps × 2 envs ≤ 2 s, and with its health checks (URLs
             that never answer) ≤ 2 s + the check timeout.

- rehearse:  500 simulated students held at once (ramped over 10 s, a rerun every 5 s for
             40 s) against a Streamlit-speaking server in its own process: every one served
             with no error, the generator's own CPU ≤ 50 % of one core (measured apart from
             the server's, so a report can tell which side was the bottleneck).

Prints each measurement and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
sys.path.insert(0, str(TESTS))
# What `plan` of the example loads from the Pulumi packages: pulumi_gcp loads a submodule on
# first use of one of its classes, so the floor uses the same classes the program does.
# (pulumi_cloudflare is loaded only with a Cloudflare domain.)
IMPORT_FLOOR = (
    "import pulumi, pulumi.runtime.mocks, pulumi_docker\n"
    "from pulumi_gcp import artifactregistry, cloudrunv2, organizations, secretmanager, "
    "serviceaccount\n"
    "artifactregistry.Repository, cloudrunv2.Service, cloudrunv2.ServiceIamMember\n"
    "organizations.get_client_config_output, serviceaccount.Account, "
    "secretmanager.SecretIamMember"
)
CLI = shutil.which("stx-pulumi") or str(Path(sys.executable).parent / "stx-pulumi")
BARE_UP = """
import sys
from pathlib import Path
from pulumi import automation as auto
from stx_pulumi.workspace import load_spec
import os
spec, ws = load_spec("hello-course", env=None, overrides={"stx:maxInstances": sys.argv[1]},
                     cwd=Path.cwd(), environ=os.environ)
def program():
    from stx_pulumi import program as p
    p.deploy(spec)
options = auto.LocalWorkspaceOptions(
    work_dir=str(ws.root), env_vars={"PULUMI_BACKEND_URL": ws.backend_url(os.environ)})
stack = auto.select_stack("hello-course.dev", "stx-pulumi", program, opts=options)
stack.up(on_event=lambda e: None)
"""


def measure(argv: list[str], runs: int, env: dict[str, str], cwd: Path = REPO,
            before: Callable[[int], None] | None = None) -> tuple[float, float]:
    """Median seconds and median peak MiB of `argv` run `runs` times."""
    times, peaks = [], []
    subprocess.run([a.replace("{i}", "19") for a in argv], cwd=cwd, env=env,
                   capture_output=True, check=False)  # warm-up: bytecode cache, disk cache
    for i in range(runs):
        if before:
            before(i)
        argv_i = [a.replace("{i}", str(20 + i)) for a in argv]
        start = time.perf_counter()
        proc = subprocess.Popen(argv_i, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(argv_i)} failed: {proc.stderr.read().decode()[-800:]}")
    return statistics.median(times), statistics.median(peaks)


def fresh_shell() -> dict[str, str]:
    """A user's shell: no Google, gcloud, stx or Pulumi settings, and Python writing its
    bytecode cache as it does by default (this sandbox sets PYTHONDONTWRITEBYTECODE)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("GOOGLE_", "CLOUDSDK_", "STX_", "PULUMI_"))
            and k != "PYTHONDONTWRITEBYTECODE"}


def bench_help(runs: int) -> tuple[bool, list[str]]:
    secs, mib = measure([CLI, "--help"], runs, fresh_shell())
    return secs <= 0.25, [f"--help           {secs:6.3f} s  {mib:6.1f} MiB   target ≤ 0.25 s"]


def bench_plan(runs: int) -> tuple[bool, list[str]]:
    env = fresh_shell()  # gcloud on PATH (when installed), no GOOGLE_CLOUD_PROJECT
    floor, floor_mib = measure([sys.executable, "-c", IMPORT_FLOOR], runs, env)
    secs, mib = measure([CLI, "plan", "examples/hello-course", "--json"], runs, env)
    gcloud = "gcloud on PATH" if shutil.which("gcloud") else "no gcloud on PATH"
    return secs <= 1.5 * floor and mib <= 100, [
        f"import floor     {floor:6.3f} s  {floor_mib:6.1f} MiB",
        f"plan --json      {secs:6.3f} s  {mib:6.1f} MiB   {secs / floor:4.2f} × floor "
        f"(target ≤ 1.5 ×, ≤ 100 MiB; {gcloud})"]


def bench_preflight(runs: int) -> tuple[bool, list[str]]:
    from fake_google import FakeGoogle

    from stx_pulumi.cloud.google import connect
    from stx_pulumi.model.checks import PASS, Check
    from stx_pulumi.ops.doctor import REQUIRED_APIS, apis_check, backend_check, prerequisites
    from stx_pulumi.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp, FakeGoogle(delay=0.5) as google:
        env = {**fresh_shell(), "CLOUDSDK_CONFIG": tmp, "GOOGLE_CLOUD_PROJECT": "bench-1",
               **google.environ(),
               "PULUMI_BACKEND_URL": "gs://team-state/stx", "PULUMI_CONFIG_PASSPHRASE": "x"}
        google.write_adc(Path(tmp))
        ws = Workspace(Path(tmp))
        cli = lambda: Check("pulumi", PASS, "found")  # noqa: E731  (up has found it already)
        singles = {
            "apis": lambda: apis_check(connect(env), "bench-1", REQUIRED_APIS),
            "backend": lambda: backend_check(ws, connect(env), env),
        }
        single = {name: min(_time(fn) for _ in range(runs)) for name, fn in singles.items()}
        whole = min(_time(lambda: prerequisites(ws, None, env, pulumi=cli, docker=cli))
                    for _ in range(runs))
    slowest = max(single.values())
    return whole <= slowest + 0.2, [
        f"preflight        {whole:6.3f} s   slowest single check {slowest:5.3f} s "
        f"({', '.join(f'{k} {v:.2f}' for k, v in single.items())}; target ≤ slowest + 0.2 s)"]


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _standin_workspace(root: Path, google: object, apps: int = 0) -> tuple[Path, dict[str, str]]:
    """A workspace with the example app on the tests' stand-in engine (and `apps` more
    copies with a stack file each), and the environment to run stx-pulumi in it."""
    standin = TESTS / "standin" / "pulumi_standin.py"
    (root / "bin").mkdir()
    (root / "bin" / "pulumi").write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{standin}" "$@"\n')
    (root / "bin" / "pulumi").chmod(0o755)
    for tool in ("docker", "gcloud"):
        shutil.copy(TESTS / "standin" / tool, root / "bin" / tool)
    ws = root / "ws"
    ws.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(REPO / name, ws / name)
    shutil.copytree(REPO / "stacks", ws / "stacks")
    shutil.copytree(REPO / "examples", ws / "examples")
    for i in range(apps):
        shutil.copytree(REPO / "examples" / "hello-course", ws / "examples" / f"course{i}")
        for env in ("dev", "prod"):
            (ws / "stacks" / f"Pulumi.course{i}.{env}.yaml").write_text(
                f"config:\n  stx:path: examples/course{i}\n")
    google.write_adc(root / "gcloud")  # type: ignore[attr-defined]
    return ws, {**fresh_shell(), "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
                "PULUMI_CONFIG_PASSPHRASE": "bench", "GOOGLE_CLOUD_PROJECT": "bench-1",
                "CLOUDSDK_CONFIG": str(root / "gcloud"), "STX_PULUMI_HOME": str(root / "home"),
                **google.environ(),  # type: ignore[attr-defined]
                "STANDIN_SERVICE_URL": "http://127.0.0.1:9"}


def bench_scale_up(runs: int) -> tuple[bool, list[str]]:
    from fake_google import FakeGoogle

    with tempfile.TemporaryDirectory() as tmp, FakeGoogle() as google:
        ws, env = _standin_workspace(Path(tmp), google)
        measure([CLI, "up", "hello-course", "--yes", "--no-verify"], 1, env, ws)
        ours, _ = measure([CLI, "up", "hello-course", "--max", "{i}", "--yes", "--no-verify"],
                          runs, env, ws)
        bare, _ = measure([sys.executable, "-c", BARE_UP, "{i}"], runs,
                          {**env, "PULUMI_CONFIG_PASSPHRASE": "bench"}, ws)
    return ours <= 1.2 * bare, [
        f"scale-only up    {ours:6.3f} s   bare automation script {bare:5.3f} s   "
        f"{ours / bare:4.2f} × (target ≤ 1.2 ×)"]


def bench_fleet(runs: int) -> tuple[bool, list[str]]:
    """One app's first `up`, then the first `up --all` of 8 (each once: 8 deploys at 1 s per
    resource operation), then the status board of the 16 stacks."""
    from fake_app import FakeApp
    from fake_google import FakeGoogle

    with tempfile.TemporaryDirectory() as tmp, FakeGoogle() as google, \
            FakeApp(mode="never") as silent:
        ws, env = _standin_workspace(Path(tmp), google, apps=8)
        (ws / "stacks" / "Pulumi.hello-course.dev.yaml").unlink()  # the 8 courses alone
        env["STANDIN_SERVICE_URL"] = silent.url  # their health checks wait for the timeout
        slow = {**env, "STANDIN_LATENCY": "1"}

        def up(*args: str) -> tuple[float, float]:
            start = time.perf_counter()
            proc = subprocess.Popen([CLI, "up", *args, "--yes", "--no-verify"], cwd=ws,
                                    env=slow, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"up {args} failed: {proc.stderr.read().decode()[-800:]}")
            return time.perf_counter() - start, usage.ru_maxrss / 1024

        one, _ = up("course0")
        fleet, mib = up("--all", "--parallel", "4")
        subprocess.run([CLI, "up", "--all", "--env", "prod", "--yes", "--no-verify",
                        "--parallel", "8"], cwd=ws, env=env, capture_output=True, check=True)
        board, _ = measure([CLI, "status", "--no-check"], runs, env, ws)
        checked, _ = measure([CLI, "status"], max(1, runs // 2), env, ws)
    from stx_pulumi.ops.status import CHECK_TIMEOUT

    met = fleet <= 2.5 * one and mib <= 300 and board <= 2 and checked <= 2 + CHECK_TIMEOUT
    return met, [
        f"up --all (8)     {fleet:6.3f} s  {mib:6.1f} MiB   one app's up {one:5.3f} s   "
        f"{fleet / one:4.2f} × (target ≤ 2.5 ×, ≤ 300 MiB)",
        f"status (16)      {board:6.3f} s   (target ≤ 2 s); with checks {checked:5.3f} s "
        f"(target ≤ {2 + CHECK_TIMEOUT:g} s)"]


def bench_scan(runs: int) -> tuple[bool, list[str]]:
    from stx_pulumi.source import inspect_source

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "Dockerfile").write_text("FROM python:3.12\nCOPY . /app\nEXPOSE 8501\n")
        for book in range(20):
            for chapter in range(20):
                folder = root / f"book{book}" / f"chapter{chapter}"
                folder.mkdir(parents=True)
                for page in range(50):
                    (folder / f"page{page}.py").write_text(f"PAGE = {page}\n")
        secs = min(_time(lambda: inspect_source(root)) for _ in range(runs))
    return secs < 2, [f"scan 20,000 files {secs:6.3f} s   (target < 2 s)"]


def bench_rehearse(runs: int) -> tuple[bool, list[str]]:
    import resource

    from stx_pulumi.ops.rehearse import RehearseRequest, run

    server = subprocess.Popen([sys.executable, str(TESTS / "streamlit_servers.py"), "ok"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        most = [0]

        def tick(report: object) -> None:
            most[0] = max(most[0], report.connected)  # type: ignore[attr-defined]

        report = run(url, RehearseRequest(500, 10, 40, 5, 30, 3), tick)
    finally:
        server.terminate()
        server.wait()
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    share = report.generator_cpu_s / report.elapsed_s
    met = report.served == 500 and not report.errors and most[0] == 500 and share <= 0.5
    return met, [f"rehearse 500     held {most[0]} at once, {report.served} served, "
                 f"{report.runs} runs, errors {report.errors or 'none'}",
                 f"                 generator CPU {report.generator_cpu_s:5.1f} s "
                 f"({share:.0%} of one core; target ≤ 50 %), server CPU "
                 f"{child.ru_utime + child.ru_stime:5.1f} s over {report.elapsed_s:.0f} s"]


BENCHES = {"help": bench_help, "plan": bench_plan, "preflight": bench_preflight,
           "scale-up": bench_scale_up, "scan": bench_scan, "fleet": bench_fleet,
           "rehearse": bench_rehearse}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES))
    args = parser.parse_args()
    ok = True
    for name in args.only or BENCHES:
        met, lines = BENCHES[name](args.runs)
        ok &= met
        for line in lines:
            print(line + ("" if met else "   MISSED"))
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
