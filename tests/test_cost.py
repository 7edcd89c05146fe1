"""`stx-pulumi cost`: the 1,000-student scenarios, the max warning, idle cost, price overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import stx, stx_json


def close(value: float, expected: float, tolerance: float = 0.05) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_scenarios_for_1000_students_match_the_original_plan(workspace: Path) -> None:
    data = stx_json("cost", "hello-course")
    assert data["users"] == 1000 and data["instances"] == 13
    totals = {s["name"]: s["total_usd"] for s in data["scenarios"]}
    assert close(totals["2-hour lab"], 2.36)
    assert close(totals["8-hour day"], 9.45)
    assert close(totals["month: 20 days x 4 h"], 94.5)
    assert data["idle_monthly"]["min_instances_usd"] == 0
    assert data["idle_monthly"]["total_usd"] < 1
    (warning,) = data["warnings"]
    assert "800 sessions" in warning and "--max 13" in warning


def test_human_table_shows_scenarios_warning_and_sources(workspace: Path) -> None:
    result = stx("cost", "hello-course")
    assert result.exit_code == 0
    for text in ("2-hour lab", "8-hour day", "month: 20 days x 4 h", "idle, per month",
                 "13 instances", "--max 13", "secondary sources", "180,000 vCPU-s"):
        assert text in result.output


def test_enough_max_means_no_warning(workspace: Path) -> None:
    assert stx_json("cost", "hello-course", "--max", "13")["warnings"] == []


def test_idle_min_instances_and_image_storage(workspace: Path) -> None:
    idle = stx_json("cost", "hello-course", "--min", "1")["idle_monthly"]
    # one idle 1 vCPU / 0.5 GiB instance for 30 days: (0.0000025 + 0.5 × 0.0000025) × 2,592,000
    assert idle["min_instances_usd"] == pytest.approx(9.72, abs=0.01)
    # 5 kept images × 0.5 GB − 0.5 GB free, at $0.10 per GB-month
    assert idle["storage_usd"] == pytest.approx(0.20)
    assert idle["total_usd"] == pytest.approx(9.92, abs=0.01)


@pytest.mark.parametrize(("args", "instances", "total"), [
    # 500 users / 250 = 2 instances × 3 h = 21,600 s: 2 vCPU × 0.000024 × 21,600 = 1.0368,
    # 4 GiB × 0.0000025 × 21,600 = 0.216, 45,000 requests × 0.40 / 1e6 = 0.018 → 1.27
    (["--cpu", "2", "--memory", "4Gi", "--concurrency", "250", "--users", "500", "--hours", "3"],
     2, 1.27),
    # min 3 beats ⌈100 / 1000⌉ = 1: 3 × 3,600 s = 10,800 s: 4 × 0.000024 × 10,800 = 1.0368,
    # 8 × 0.0000025 × 10,800 = 0.216, 3,000 requests = 0.0012 → 1.25
    (["--cpu", "4", "--memory", "8Gi", "--concurrency", "1000", "--min", "3", "--users", "100",
      "--hours", "1"], 3, 1.25),
])
def test_other_sizes_computed_by_hand(workspace: Path, args: list[str], instances: int,
                                      total: float) -> None:
    data = stx_json("cost", "hello-course", *args)
    assert data["instances"] == instances
    assert data["total_usd"] == pytest.approx(total, abs=0.005)


def test_single_estimate_json_shape(workspace: Path) -> None:
    data = stx_json("cost", "hello-course", "--users", "1000", "--hours", "2")
    assert {"users", "hours", "instances", "total_usd", "breakdown", "warnings"} <= set(data)
    assert (data["users"], data["hours"], data["instances"]) == (1000, 2, 13)
    assert close(data["total_usd"], 2.36)
    assert data["breakdown"]["requests"] == 1000 * 2 * 30


def test_prices_file_overrides_and_is_named_as_the_source(workspace: Path,
                                                          tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"vcpu_second": 0.00005, "gib_second": 0}))
    data = stx_json("cost", "hello-course", "--users", "80", "--hours", "1", "--prices",
                    str(file))
    # 1 instance × 3,600 s × 0.00005 + 2,400 requests × 0.40 / 1e6
    assert data["total_usd"] == pytest.approx(0.18, abs=0.001)
    assert data["price_sources"]["vcpu_second"] == "--prices file"
    file.write_text(json.dumps({"cpu_price": 1}))
    bad = stx("cost", "hello-course", "--prices", str(file))
    assert bad.exit_code == 2 and "--prices" in bad.output and "cpu_price" in bad.output


@pytest.mark.parametrize("args", [["--users", "0"], ["--hours", "0"], ["--hours", "-2"]])
def test_bad_users_or_hours(workspace: Path, args: list[str]) -> None:
    result = stx("cost", "hello-course", *args)
    assert result.exit_code == 2 and args[0] in result.output


def test_plan_carries_the_same_summary(workspace: Path) -> None:
    plan = stx_json("plan", "hello-course")
    cost = stx_json("cost", "hello-course")
    assert plan["cost"]["scenarios"] == cost["scenarios"]
    human = stx("plan", "hello-course").output
    assert "2-hour lab" in human and "--max 13" in human
