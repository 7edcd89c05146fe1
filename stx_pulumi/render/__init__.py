"""All printing: plans, results, warnings and errors, for people (rich) or for CI (--json).

Output goes to stdout; errors and progress to stderr. Secrets print as "[secret]". The module
itself is a `Reporter` (ops.report): `info` and `warning` are its two messages.
"""

from stx_pulumi.ops.report import REPORTER
from stx_pulumi.render.console import (
    error,
    info,
    ordered_outputs,
    print_json,
    safe,
    stderr,
    stdout,
    warning,
)
from stx_pulumi.render.live import FleetBoard, Progress, fleet_summary
from stx_pulumi.render.plan import plan_json, plan_tree
from stx_pulumi.render.tables import (
    checks_table,
    cost,
    history,
    log_lines,
    operation,
    outputs_table,
    stacks_table,
    status_table,
    team_outcome,
    verification,
    windows,
)

__all__ = [
    "REPORTER", "FleetBoard", "Progress", "checks_table", "cost", "error", "fleet_summary",
    "history", "info", "log_lines", "operation", "ordered_outputs", "outputs_table",
    "plan_json", "plan_tree", "print_json", "safe", "stacks_table", "status_table", "stderr",
    "stdout", "team_outcome", "verification", "warning", "windows",
]
