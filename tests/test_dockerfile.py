"""The Dockerfile's truth (issue #10, part 1): real-world Dockerfile shapes and the port and
serve mode each must give, or the exit 2 it must cause; --serve-mode and --port override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import stx

from stx_pulumi.errors import SpecError
from stx_pulumi.model.build import build_spec
from stx_pulumi.source import inspect_source

NGINX = "RUN apt-get update && apt-get install -y --no-install-recommends \\\n    nginx-light\n"
ASK = "sets no STX_SERVE_MODE"
SHAPES: list[tuple[str, str, tuple[str, int] | str]] = [
    ("ENV K=V", f"FROM python:3.12\n{NGINX}ENV STX_SERVE_MODE=dual\nEXPOSE 80\n", ("dual", 80)),
    ("ENV K V", "FROM python:3.12\nENV STX_SERVE_MODE streamlit-only\n",
     ("streamlit-only", 8501)),
    ("multi-line ENV", "FROM python:3.12\nENV A=1 \\\n    STX_SERVE_MODE=static-only \\\n"
     "    B=2\nEXPOSE 80\n", ("static-only", 80)),
    ("quoted ENV", 'FROM python:3.12\nENV STX_SERVE_MODE="dual"\n', ("dual", 80)),
    ("later ENV wins", "FROM python:3.12\nENV STX_SERVE_MODE=dual\n"
     "ENV STX_SERVE_MODE=static-only\n", ("static-only", 80)),
    ("EXPOSE 80 8501 with Nginx", f"FROM python:3.12\n{NGINX}EXPOSE 80 8501\n", ("dual", 80)),
    ("EXPOSE 80 with apk Nginx", "FROM python:3.12-alpine\nRUN apk add --no-cache nginx\n"
     "EXPOSE 80/tcp\n", ("dual", 80)),
    ("books root: EXPOSE 8501, no Nginx", "FROM python:3.12\nWORKDIR /app\nCOPY . .\n"
     "EXPOSE 8501\nENTRYPOINT [\"sh\", \"-c\", \"cd /app/${FOLDER} && streamlit run book.py "
     "--server.port=8501\"]\n", ("streamlit-only", 8501)),
    ("EXPOSE 80, no Nginx", "FROM python:3.12\nEXPOSE 80\n", ASK),
    ("no EXPOSE, no mode", "FROM python:3.12\nCMD [\"streamlit\", \"run\", \"book.py\"]\n", ASK),
    ("another port", "FROM python:3.12\nEXPOSE 8080\n", ASK),
    ("ARG-based port", "ARG PORT=8501\nFROM python:3.12\nARG PORT\nEXPOSE ${PORT}\n",
     ("streamlit-only", 8501)),
    ("ARG default in the reference", "FROM python:3.12\nEXPOSE ${PORT:-8501}\n",
     ("streamlit-only", 8501)),
    ("Nginx copied from another stage", "FROM nginx:1.27 AS web\nFROM python:3.12\n"
     "COPY --from=web /usr/sbin/nginx /usr/sbin/nginx\nEXPOSE 80 8501\n", ("dual", 80)),
    ("nginx base image", "FROM nginx:1.27-alpine\nEXPOSE 80\n", ("dual", 80)),
    ("mode only in an earlier stage", "FROM python:3.12 AS build\nENV STX_SERVE_MODE=dual\n"
     "FROM python:3.12-slim\nEXPOSE 8501\n", ("streamlit-only", 8501)),
    ("lower-case instructions", "from python:3.12\nexpose 8501\n", ("streamlit-only", 8501)),
    ("invalid mode", "FROM python:3.12\nENV STX_SERVE_MODE=both\n", "STX_SERVE_MODE 'both'"),
]


def decide(tmp_path: Path, dockerfile: str, **settings: object) -> tuple[str, int]:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    spec = build_spec({"gcp:project": "course-project-1", **settings}, app="c", env="dev",
                      source=inspect_source(tmp_path))
    return spec.serve_mode, spec.port


def test_there_are_at_least_15_shapes() -> None:
    assert len(SHAPES) >= 15


@pytest.mark.parametrize(("dockerfile", "want"), [s[1:] for s in SHAPES],
                         ids=[s[0] for s in SHAPES])
def test_dockerfile_shape_gives_mode_and_port(tmp_path: Path, dockerfile: str,
                                              want: tuple[str, int] | str) -> None:
    if isinstance(want, str):
        with pytest.raises(SpecError) as err:
            decide(tmp_path, dockerfile)
        assert want in str(err.value)
        if want == ASK:
            assert "--serve-mode" in str(err.value) and "--port" in str(err.value)
    else:
        assert decide(tmp_path, dockerfile) == want


def test_options_override_the_image(tmp_path: Path) -> None:
    dockerfile = "FROM python:3.12\nEXPOSE 80\n"  # undecidable alone
    assert decide(tmp_path, dockerfile, **{"stx:serveMode": "static-only"}) == (
        "static-only", 80)
    assert decide(tmp_path, dockerfile, **{"stx:port": "8501"}) == ("streamlit-only", 8501)
    assert decide(tmp_path, dockerfile, **{"stx:serveMode": "streamlit-only",
                                           "stx:port": 8080}) == ("streamlit-only", 8080)


def test_login_needs_nginx(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        decide(tmp_path, "FROM python:3.12\nEXPOSE 8501\n",
               **{"stx:secretEnv": {"STX_AUTH_LIVE": "course-auth"}})
    assert "STX_AUTH_*" in str(err.value) and "streamlit-only has no Nginx" in str(err.value)


def test_port_option_reaches_the_container(workspace: Path) -> None:
    result = stx("plan", "hello-course", "--serve-mode", "streamlit-only", "--port", "8080",
                 "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    service = next(r for r in data["resources"] if r["type"] == "gcp:cloudrunv2/service:Service")
    container = service["inputs"]["template"]["containers"][0]
    assert container["ports"]["containerPort"] == 8080
    assert container["startupProbe"]["tcpSocket"]["port"] == 8080
    assert data["outputs"]["port"] == 8080


def test_an_undecidable_image_is_exit_2_naming_both_options(workspace: Path) -> None:
    dockerfile = workspace / "examples" / "hello-course" / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nCOPY . /app\nEXPOSE 80\n")
    result = stx("plan", "hello-course")
    assert result.exit_code == 2
    assert "sets no STX_SERVE_MODE and exposes 80 with no Nginx" in result.output
    assert "stx:serveMode (--serve-mode)" in result.output and "stx:port (--port)" in (
        result.output)


BOOKS = Path(__file__).resolve().parent.parent / "examples" / "course-books"


def test_a_book_of_a_repository_of_books(workspace: Path) -> None:
    """The root Dockerfile serves Streamlit alone on 8501; --folder picks the book."""
    import shutil

    shutil.copytree(BOOKS, workspace / "examples" / "course-books")
    result = stx("plan", "physics-intro", "--path", "examples/course-books", "--folder",
                 "manuals/intro", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    service = next(r for r in data["resources"] if r["type"] == "gcp:cloudrunv2/service:Service")
    container = service["inputs"]["template"]["containers"][0]
    envs = {e["name"]: e["value"] for e in container["envs"]}
    assert envs["FOLDER"] == "manuals/intro" and "STX_SERVE_MODE" not in envs
    assert container["ports"]["containerPort"] == 8501
    assert data["outputs"]["serve_mode"] == "streamlit-only"


@pytest.mark.parametrize(("folder", "named"), [
    ("manuals/missing", "is not a folder holding a book.py"),
    ("shared_blocks", "is not a folder holding a book.py"),
    ("../hello-course", "must be a relative path inside the build context"),
    ("/etc", "must be a relative path inside the build context"),
])
def test_a_folder_that_is_not_a_book_is_exit_2(workspace: Path, folder: str,
                                               named: str) -> None:
    import shutil

    shutil.copytree(BOOKS, workspace / "examples" / "course-books")
    result = stx("plan", "physics-intro", "--path", "examples/course-books", "--folder", folder)
    assert result.exit_code == 2 and "stx:folder (--folder)" in result.output
    assert named in result.output


def test_folder_env_var_points_to_the_option(workspace: Path) -> None:
    result = stx("plan", "hello-course", "--env-var", "FOLDER=manuals/intro")
    assert result.exit_code == 2 and "set FOLDER with --folder" in result.output


def test_folder_warns_when_the_image_does_not_hold_the_context(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "book.py").write_text("")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12\nCOPY book.py /app/\nEXPOSE 8501\n")
    spec = build_spec({"gcp:project": "course-project-1", "stx:folder": "book"}, app="c",
                      env="dev", source=inspect_source(tmp_path, ["book"]))
    assert any("copies neither the build context" in w for w in spec.warnings)


@pytest.mark.parametrize("copy", ["COPY manuals/ ./manuals/", "COPY ./manuals /app/manuals",
                                  "COPY manuals/intro manuals/intro", "ADD manuals/* /app/m/",
                                  "COPY --chown=1000 . ."])
def test_a_copy_of_a_folder_holding_the_book_is_enough(tmp_path: Path, copy: str) -> None:
    """The author's repository of books copies `manuals/` alone: no false warning."""
    (tmp_path / "manuals" / "intro").mkdir(parents=True)
    (tmp_path / "manuals" / "intro" / "book.py").write_text("")
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.12\nWORKDIR /app\n{copy}\n"
                                         "EXPOSE 8501\n")
    spec = build_spec({"gcp:project": "course-project-1", "stx:folder": "manuals/intro"},
                      app="c", env="dev", source=inspect_source(tmp_path, ["manuals/intro"]))
    assert not [w for w in spec.warnings if "FOLDER=" in w], spec.warnings


def test_a_copy_from_another_stage_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "manuals" / "intro").mkdir(parents=True)
    (tmp_path / "manuals" / "intro" / "book.py").write_text("")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12 AS b\nFROM python:3.12\n"
                                         "COPY --from=b /manuals /manuals\nEXPOSE 8501\n")
    spec = build_spec({"gcp:project": "course-project-1", "stx:folder": "manuals/intro"},
                      app="c", env="dev", source=inspect_source(tmp_path, ["manuals/intro"]))
    assert any("FOLDER=manuals/intro may not exist" in w for w in spec.warnings)


def test_a_changed_port_of_a_deployed_stack_needs_yes(workspace: Path,
                                                      pulumi_cli: object) -> None:
    from helpers import snapshot

    assert stx("up", "hello-course", "--yes", "--no-verify").exit_code == 0
    before = snapshot(workspace)
    result = stx("up", "hello-course", "--serve-mode", "streamlit-only", input="")
    assert result.exit_code == 2
    assert "the container port changes from 80 to 8501 (streamlit-only" in result.output
    assert snapshot(workspace) == before
    result = stx("up", "hello-course", "--serve-mode", "streamlit-only", "--yes", "--no-verify")
    assert result.exit_code == 0, result.output
