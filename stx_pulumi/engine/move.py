"""Moving a stack to another backend (team setup): only ciphertexts travel, and the copy
left behind is a backup."""

from __future__ import annotations

from stx_pulumi.engine.backend import Backend
from stx_pulumi.engine.state import urns
from stx_pulumi.errors import EngineError


def move(source: Backend, name: str, target: Backend, provider: str) -> bool:
    """Stack `name` copied from `source`'s backend into `target`'s, then its secrets (config
    and state) re-encrypted with `provider`. Only ciphertexts travel: a plain `stack
    export` (automation's export shows secrets) into `stack import`. The source copy stays
    as it was, a backup. False when the target had the stack already.
    (`stack init` on a stack file with an encryption salt keeps it; `stack import` keeps
    the deployment's ciphertexts readable through its `secrets_providers`; then
    `stack change-secrets-provider` re-encrypts config and state: Pulumi CLI docs. CLIs
    from 3.255 also have `stack migrate`, which does the same in one command.)"""
    data = source.export(name)
    if not target.exists(name):
        target.run_cli(name, ["stack", "init", name, "--secrets-provider",
                              source.files.secrets_provider_of(name), "--non-interactive"])
    copied = bool(urns(data) - urns(target.export(name)))  # a copy cut short: again
    if copied:
        target.import_state(name, data)
    if target.files.secrets_provider_of(name) != provider:
        target.run_cli(name, ["stack", "change-secrets-provider", provider, "--stack", name,
                              "--non-interactive"])
    if urns(data) - urns(target.export(name)):
        raise EngineError(f"{name}: the copy in {target.backend} lacks resources of "
                          f"{source.backend}")
    target.check_secrets(name)
    return copied
