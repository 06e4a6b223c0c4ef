"""The model card (README.md) of a pushed policy: what produced it, and how well its checkpoints did, so a
teammate loading ``@step-002000`` knows what they load."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from runner.core import layout, outputs

COMPARE_STAGE = "compare"


def step_tag(step: int) -> str:
    """The revision one checkpoint is pushed as: ``step-002000`` (zero-padded, so tags sort by step)."""
    return f"step-{step:06d}"


def latest_comparison(root: Path, train_run: str) -> tuple[str, list[dict[str, str]]] | None:
    """The newest comparison whose rows evaluate checkpoints of ``train_run``: (compare run id, those rows)."""
    for run in sorted(outputs.iter_runs(root), key=lambda r: r.started_at, reverse=True):
        if run.stage != COMPARE_STAGE or run.status != "succeeded":
            continue
        table = run.path / layout.COMPARISON_FILES[0]
        if not table.exists():
            continue
        with open(table) as f:
            rows = [row for row in csv.DictReader(f) if row.get("policy") == train_run]
        if rows:
            return run.id, rows
    return None


def _comparison_table(comparison: tuple[str, list[dict[str, str]]] | None) -> list[str]:
    if comparison is None:
        return [
            "No comparison of these checkpoints exists yet (`runner eval eval.checkpoint=all`, then "
            "`runner compare`); push again to include one."
        ]
    run_id, rows = comparison
    lines = [
        f"From comparison `{run_id}` (matched held-out episodes; 95 % Wilson intervals; one-sided Fisher "
        "exact test against the best):",
        "",
        "| checkpoint | successes | success rate | 95 % CI | best | p vs best |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: int(r["checkpoint_step"] or 0)):
        rate, lo, hi = (float(row[k]) for k in ("success_rate", "ci95_lo", "ci95_hi"))
        lines.append(
            f"| {row['checkpoint_step']} | {row['successes']}/{row['n_episodes']} | {rate:.0%} | "
            f"{lo:.0%}-{hi:.0%} | {'yes' if row['best'] == 'True' else ''} | {row['p_vs_best'] or '-'} |"
        )
    return lines


def model_card(
    repo_id: str,
    train: outputs.RunInfo,
    step: int,
    pushed_steps: list[int],
    config: dict[str, Any],
    comparison: tuple[str, list[dict[str, str]]] | None,
) -> str:
    """README.md for revision ``step-<step>`` of ``repo_id``: YAML metadata the Hub reads, then the provenance."""
    lineage = train.record.get("lineage") or {}
    hub_datasets = [d for d in (train.record.get("inputs") or []) if d.get("hub") == "dataset"]
    policy = config.get("policy") or {}
    schedule = config.get("train") or {}
    metadata = {
        "library_name": "lerobot",
        "pipeline_tag": "robotics",
        "license": "apache-2.0",
        "tags": ["lerobot", "robotics", "runner", str(policy.get("type", "policy"))],
    }
    if hub_datasets:
        metadata["datasets"] = sorted({d["repo_id"] for d in hub_datasets})
    git = train.record.get("git") or {}
    sources = [f"- record run `{run_id}` (trained on this machine)" for run_id in lineage.get("dataset_runs", [])]
    sources += [
        f"- Hub dataset `{d['repo_id']}` at commit `{d['commit']}` (asked as `{d['revision']}`)" for d in hub_datasets
    ]
    tags = ", ".join(f"`{step_tag(s)}`" for s in sorted(pushed_steps))
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).strip(),
        "---",
        "",
        f"# {policy.get('type', 'policy')} policy: `{repo_id}`",
        "",
        f"This revision is checkpoint **{step}** of train run `{train.id}` (experiment `{train.experiment}`), "
        f"trained with runner (declarative experiments on LeRobot). Checkpoints on the Hub: {tags}; `main` holds "
        "the last one pushed.",
        "",
        "Evaluate it with runner, pinned to this checkpoint:",
        "",
        f"    runner eval eval.policy_path=hf:{repo_id}@{step_tag(step)}",
        "",
        "## What produced it",
        "",
        "Trained on:",
        *sources,
        *(["- episodes " + json.dumps(lineage["episodes"])] if lineage.get("episodes") else []),
        "",
        f"Schedule: {schedule.get('steps')} steps, batch size {schedule.get('batch_size')}, learning rate "
        f"{schedule.get('lr') or 'the policy default'}, seed {schedule.get('seed')}, checkpoints at "
        f"{', '.join(map(str, (train.record.get('train') or {}).get('save_steps') or [])) or '-'}; "
        f"device {(train.record.get('train') or {}).get('device', '?')}.",
        "",
        f"runner source: {git.get('commit') or git.get('note', 'unknown')}"
        + (" (with uncommitted changes)" if git.get("dirty") else "")
        + ".",
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in (train.record.get("packages") or {}).items() if v) + ".",
        "",
        "## How well it does",
        "",
        *_comparison_table(comparison),
        "",
        "## The policy config",
        "",
        "```yaml",
        yaml.safe_dump({"policy": policy}, sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(lines)
