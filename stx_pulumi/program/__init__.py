"""The Pulumi program: the `StreamtexApp` component that puts one AppSpec on Cloud Run.

- `app`: the component (registry, image, runtime identity, secret access, outputs);
- `image`: how the image is built (locally); `build`: the cloud builder's bucket and account;
- `service`: one Cloud Run service with its public access, domain mapping and DNS record
  (the app's, or one per book);
- `config`: the program as `Pulumi.yaml`'s `main` runs it, from the stack's config.

Imported only when a command needs Pulumi (never by `--help`); `pulumi_cloudflare` is imported
only when the spec asks for a Cloudflare DNS record.
"""

from stx_pulumi.program.app import (
    COMPONENT_TYPE,
    BuildBase,
    StreamtexApp,
    deploy,
    deploy_build_base,
)
from stx_pulumi.program.config import (
    cloudflare_token,
    deploy_from_config,
    settings_from_config,
    workspace_root,
)

__all__ = ["COMPONENT_TYPE", "BuildBase", "StreamtexApp", "cloudflare_token", "deploy",
           "deploy_build_base", "deploy_from_config", "settings_from_config", "workspace_root"]
