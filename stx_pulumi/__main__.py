"""`python -m stx_pulumi` runs the CLI."""

from stx_pulumi.cli import main

main()
