"""Pulumi.yaml's `main`: the same program as `stx-pulumi up`, configured by the stack's config.

For `pulumi preview --stack hello-course.dev` and friends, with stx-pulumi installed in the
Python environment Pulumi uses.
"""

from stx_pulumi.program import deploy_from_config

deploy_from_config()
