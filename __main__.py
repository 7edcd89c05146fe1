# The stx-pulumi program, for plain `pulumi` commands in this workspace (Pulumi.yaml's `main`):
#   PULUMI_CONFIG_PASSPHRASE_FILE=.pulumi-state/passphrase pulumi preview -s hello-course.dev
# It deploys what `stx-pulumi up` deploys, from the stack's config. Written by `stx-pulumi init`.
from stx_pulumi.pulumi_main import main

main()
