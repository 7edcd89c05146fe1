"""The GitHub REST API, for the one fact `team setup` needs: a repository's numeric id and
default branch (GET /repos/{owner}/{repo}; docs.github.com/rest/repos/repos). GITHUB_TOKEN or
GH_TOKEN is sent when set (a private repository needs it); STX_GITHUB_API points elsewhere
(tests, GitHub Enterprise)."""

from __future__ import annotations

from collections.abc import Mapping

from stx_pulumi.errors import InputError, PrerequisiteError
from stx_pulumi.model.team import REPO_RE, GitHubRepo, branch_problem

API = "https://api.github.com"


def repository(name: str, environ: Mapping[str, str]) -> GitHubRepo:
    import httpx

    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{environ.get('STX_GITHUB_API') or API}/repos/{name}"
    try:
        answer = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as err:
        raise PrerequisiteError(f"--github: GitHub could not be reached to read {name}'s id "
                                f"({err})", hint="run it where api.github.com answers") from None
    if answer.status_code == 404:
        raise InputError(f"--github: repository {name} was not found on GitHub (a private "
                         "repository needs GITHUB_TOKEN set)")
    if answer.status_code != 200:
        raise PrerequisiteError(f"--github: GitHub answered {answer.status_code} for {name}",
                                hint="set GITHUB_TOKEN if it is a rate limit or a private "
                                "repository")
    try:
        data = answer.json()
        full, number = str(data["full_name"]), data["id"]
        branch = str(data.get("default_branch") or "main")
    except (ValueError, KeyError, TypeError):
        raise PrerequisiteError(f"--github: GitHub's answer for {name} is not a repository"
                                ) from None
    # what GitHub says reaches a CEL condition and the workflow: the same allow-lists apply
    problem = (branch_problem(branch) or (None if REPO_RE.fullmatch(full) else
                                          f"{full[:80]!r} is not owner/name") or
               (None if isinstance(number, int) and number > 0 else "no numeric id"))
    if problem:
        raise InputError(f"--github: {name}: GitHub's answer: {problem}")
    return GitHubRepo(full, number, branch)
