"""The program of plain `pulumi` commands in a workspace: the same StreamtexApp `up` deploys,
configured by the stack's config. A workspace's `__main__.py` (written by `stx-pulumi init`)
calls `main()`; `runtime: python` runs it with the Python environment Pulumi finds (the one on
PATH, or `runtime.options.virtualenv`), which must have stx-pulumi installed.
"""


def main() -> None:
    from stx_pulumi.program import deploy_from_config

    deploy_from_config()


if __name__ == "__main__":
    main()
