"""Every validation rule, as a user meets it: `stx-pulumi plan ...` exits 2 naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stx_pulumi.cli import app
from stx_pulumi.model.build import build_spec
from stx_pulumi.model.names import service_account_id
from stx_pulumi.source import SourceFacts

runner = CliRunner()
ZONE = "0123456789abcdef0123456789abcdef"


def plan(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["plan", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--min", "-1"], "stx:minInstances (--min): must be 0 or more"),
    (["--max", "0"], "stx:maxInstances (--max): must be between 1 and 1000"),
    (["--max", "1001"], "stx:maxInstances (--max): must be between 1 and 1000"),
    (["--min", "5", "--max", "3"], "stx:minInstances (--min): 5 is more than"),
    (["--cpu", "3"], "stx:cpu (--cpu): must be one of 1, 2, 4, 6, 8"),
    (["--memory", "512MB"], "stx:memory (--memory): '512MB' is not a size"),
    (["--memory", "8Gi"], "stx:memory (--memory): 8Gi is outside what 1 vCPU allows"),
    (["--cpu", "4", "--memory", "1Gi"], "stx:memory (--memory): 1Gi is outside what 4 vCPU"),
    (["--concurrency", "0"], "stx:concurrency (--concurrency): must be between 1 and 1000"),
    (["--concurrency", "1001"], "stx:concurrency (--concurrency): must be between 1 and 1000"),
    (["--timeout", "0"], "stx:timeout (--timeout): must be between 1 and 3600"),
    (["--timeout", "3601"], "stx:timeout (--timeout): must be between 1 and 3600"),
    (["--serve-mode", "both"], "stx:serveMode (--serve-mode): 'both' is not one of"),
    (["--domain", "not a host"], "stx:domain (--domain): 'not a host' is not a hostname"),
    (["--domain", "*.example.org"], "stx:domain (--domain)"),
    (["--domain", "a" * 60 + ".example.org"], "stx:domain (--domain)"),
    (["--domain", "course.example.org", "--cloudflare-zone", ZONE],
     "cloudflare:apiToken (CLOUDFLARE_API_TOKEN): a Cloudflare zone needs an API token"),
    (["--cloudflare-zone", "zone"], "stx:cloudflareZoneId (--cloudflare-zone)"),
    (["--project", "Bad_Project"], "gcp:project (--project): 'Bad_Project' is not a project id"),
    (["--region", "moon"], "gcp:region (--region): 'moon' is not a region"),
    (["--env", "Prod"], "env (--env) 'Prod'"),
    (["--env", "averyverylongenv"], "env (--env)"),
    (["--env-var", "NOEQUALS"], "--env-var: 'NOEQUALS' is not K=V"),
    (["--env-var", "PORT=1"], "stx:envVars (--env-var): 'PORT' is not an allowed variable"),
    (["--secret-env", "PW=bad/name"], "stx:secretEnv (--secret-env): PW=bad/name is not"),
    (["--secret-env", "PW=pw:x"], "stx:secretEnv (--secret-env)"),
])
def test_bad_option_exits_2_naming_the_key(workspace: Path, args: list[str],
                                           expected: str) -> None:
    code, output = plan("hello-course", *args)
    assert code == 2, output
    assert expected in output
    assert "Traceback" not in output


def test_all_problems_are_reported_at_once(workspace: Path) -> None:
    code, output = plan("hello-course", "--min", "-1", "--cpu", "3", "--timeout", "0")
    assert code == 2
    assert output.count("error:") == 3


def test_bad_stack_config_value_names_the_key(workspace: Path) -> None:
    stack = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    stack.write_text(stack.read_text().replace("stx:maxInstances: 10", "stx:maxInstances: lots"))
    code, output = plan("hello-course")
    assert code == 2
    assert "stx:maxInstances (--max): 'lots' is not a whole number" in output


def test_broken_stack_file_is_named(workspace: Path) -> None:
    stack = workspace / "stacks" / "Pulumi.hello-course.dev.yaml"
    stack.write_text("config:\n  stx:maxInstances: [unclosed\n")
    code, output = plan("hello-course")
    assert code == 2
    assert "Pulumi.hello-course.dev.yaml: not valid YAML" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("name", ["Hello", "1course", "course-", "a" * 41, "my_course"])
def test_bad_app_name(workspace: Path, name: str) -> None:
    code, output = plan(name, "--path", "examples/hello-course")
    assert code == 2
    assert f"app name {name!r}" in output


def test_app_folder_named_badly_asks_for_a_name(workspace: Path) -> None:
    (workspace / "My_Course").mkdir()
    code, output = plan("My_Course")
    assert code == 2
    assert "give the name as APP and the folder as --path" in output


def test_service_name_must_stay_under_50_characters(workspace: Path) -> None:
    code, output = plan("a" * 40, "--path", "examples/hello-course", "--env", "staging-eu")
    assert code == 2
    assert "the Cloud Run service name" in output and "at most 49" in output


def test_missing_app_folder(workspace: Path) -> None:
    code, output = plan("hello-course", "--path", "nowhere")
    assert code == 2
    assert "stx:path (--path): app folder" in output and "does not exist" in output


def test_folder_without_dockerfile(workspace: Path) -> None:
    (workspace / "examples" / "hello-course" / "Dockerfile").unlink()
    code, output = plan("hello-course")
    assert code == 2
    assert "stx:path (--path): no Dockerfile in" in output


def test_streamtex_app_without_uv_lock_is_told_to_run_uv_lock(workspace: Path) -> None:
    (workspace / "examples" / "hello-course" / "uv.lock").unlink()
    code, output = plan("hello-course")
    assert code == 2
    assert "the Dockerfile copies uv.lock" in output and "run `uv lock`" in output


@pytest.mark.parametrize("secret", [".env", ".stx-deploy.env", ".stx-passwords.toml"])
def test_secret_file_not_in_dockerignore(workspace: Path, secret: str) -> None:
    folder = workspace / "examples" / "hello-course"
    (folder / secret).write_text("TOKEN=abc\n")
    ignore = folder / ".dockerignore"
    ignore.write_text("\n".join(line for line in ignore.read_text().splitlines()
                                if line.strip() != secret) + "\n")
    code, output = plan("hello-course")
    assert code == 2
    assert f"{secret} would ship in the image" in output


def test_secret_file_excluded_by_a_wildcard_passes(workspace: Path) -> None:
    folder = workspace / "examples" / "hello-course"
    (folder / ".env").write_text("TOKEN=abc\n")
    (folder / ".dockerignore").write_text(".env*\n.stx-*\n")
    code, output = plan("hello-course")
    assert code == 0, output


def test_secret_file_re_included_by_negation_is_caught(workspace: Path) -> None:
    folder = workspace / "examples" / "hello-course"
    (folder / ".env").write_text("TOKEN=abc\n")
    (folder / ".dockerignore").write_text(".env*\n!.env\n")
    code, output = plan("hello-course")
    assert code == 2 and ".env would ship in the image" in output


def test_bad_input_writes_nothing(workspace: Path) -> None:
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    code, _ = plan("hello-course", "--max", "0")
    assert code == 2
    after = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    assert after == before


def test_service_account_id_is_shortened_deterministically() -> None:
    long = service_account_id("a-very-long-course-name-for-tests", "staging")
    assert len(long) <= 30 and long == service_account_id("a-very-long-course-name-for-tests",
                                                          "staging")
    assert long != service_account_id("a-very-long-course-name-for-testz", "staging")
    assert service_account_id("a", "b") == "a-b-run"  # at least 6 characters


def test_defaults() -> None:
    facts = SourceFacts(path=Path("/app"), exists=True, has_dockerfile=True, image_tag="src-x",
                        exposed_ports=frozenset({80, 8501}), has_nginx=True)
    spec = build_spec({"gcp:project": "course-project-1"}, app="c", env="dev", source=facts)
    base = spec.base
    assert (spec.region, base.min_instances, base.max_instances, base.cpu, base.memory,
            base.concurrency, base.timeout_s, base.public, spec.protected, spec.serve_mode) == (
        "europe-west1", 0, 10, 1, "512Mi", 80, 3600, True, False, "dual")
    prod = build_spec({"gcp:project": "course-project-1"}, app="c", env="prod", source=facts)
    assert prod.protected is True
    unprotected = build_spec({"gcp:project": "course-project-1", "stx:protected": "false"},
                             app="c", env="prod", source=facts)
    assert unprotected.protected is False


def test_serve_mode_comes_from_the_dockerfile_unless_set() -> None:
    facts = SourceFacts(path=Path("/app"), exists=True, has_dockerfile=True,
                        dockerfile_serve_mode="static-only", image_tag="src-x")
    spec = build_spec({}, app="c", env="dev", source=facts)
    assert spec.serve_mode == "static-only" and spec.port == 80
    override = build_spec({"stx:serveMode": "streamlit-only"}, app="c", env="dev", source=facts)
    assert override.serve_mode == "streamlit-only" and override.port == 8501


def test_region_without_domain_mappings_warns() -> None:
    facts = SourceFacts(path=Path("/app"), exists=True, has_dockerfile=True, image_tag="src-x",
                        exposed_ports=frozenset({80, 8501}), has_nginx=True)
    spec = build_spec({"gcp:region": "europe-west3", "stx:domain": "c.example.org"},
                      app="c", env="dev", source=facts)
    assert any("europe-west3 has no Cloud Run domain mappings" in w for w in spec.warnings)


@pytest.mark.parametrize(("package", "known"), [("pulumi_gcp", "GCP_PROVIDER_KEYS"),
                                                ("pulumi_cloudflare", "CLOUDFLARE_PROVIDER_KEYS")])
def test_provider_key_lists_match_the_installed_providers(package: str, known: str) -> None:
    """The keys each provider reads from the stack config (its config/vars.py), so an
    unknown-key error never hits a real provider setting; gcp's *CustomEndpoint keys go by
    their suffix."""
    import importlib.util
    import re

    from stx_pulumi.model import settings as spec

    origin = importlib.util.find_spec(package).origin  # the package, not imported (3.5 s)
    source = (Path(origin).parent / "config" / "vars.py").read_text()
    keys = set(re.findall(r"__config__\.get\w*\('([A-Za-z0-9]+)'", source))
    assert keys, f"no config keys found in {package}"
    assert {k for k in keys if not k.endswith("CustomEndpoint")} == getattr(spec, known)
