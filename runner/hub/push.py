"""Pushes: a record run's dataset as a dataset repo, a train run's checkpoints as a model repo (one tag per
checkpoint step). Each push is a run of its own (stage ``push``, the pushed run as its parent) whose run.json
holds the repo, revisions, commit shas and URL; the pushed run's run.json lists its pushes, failed ones with
their error. A failed push leaves the pushed run as it was; ``runner push RUN`` again finishes it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.core import layout, outputs
from runner.core.errors import ConfigError
from runner.core.redact import Redactor
from runner.core.run import Run, utility_run
from runner.hub import access, cards, refs

log = logging.getLogger("runner.hub")

STAGE = "push"
# The repo's own files a checkpoint push leaves in place.
KEPT_REMOTE_FILES = {".gitattributes"}


class PushFailed(RuntimeError):
    """The upload itself failed (a dropped link, the Hub refusing a commit): the pushed run's data is intact."""


@dataclass
class PushPlan:
    """A push checked before anything is uploaded."""

    pushed: outputs.RunInfo
    repo_type: str  # "dataset" or "model"
    repo_id: str
    private: bool
    token: str
    force: bool = False
    steps: list[int] = field(default_factory=list)  # model pushes: the checkpoints, ascending
    live_run: Run | None = None  # the pushed run when it is still the process's own (a push at its end)


def run_config(run: outputs.RunInfo) -> dict[str, Any]:
    path = run.path / layout.CONFIG_YAML
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def plan_dataset_push(
    run: outputs.RunInfo, repo_id: str | None, private: bool | None, force: bool, key: str = "--repo-id"
) -> PushPlan:
    """A record run's dataset push, checked: kept episodes, a repo id, a token that may write there."""
    if run.stage != "record":
        raise ConfigError("RUN", f"is {run.id}, a {run.stage} run", "push a record run (its dataset) or a train run")
    path = run.path / layout.DATASET_DIR / layout.DATASET_INFO
    info = json.loads(path.read_text()) if path.exists() else {}
    if not info.get("total_episodes"):
        raise ConfigError("RUN", f"is record run {run.id}, which kept no episode", "record some first")
    dataset = run_config(run).get("dataset") or {}
    repo_id = refs.check_repo_id(repo_id or dataset.get("hub_repo_id") or dataset.get("repo_id", ""), key)
    token = access.require_token(key if key != "--repo-id" else "runner push")
    access.check_writer(repo_id, "dataset", key, token)
    if not force:
        access.check_same_features(info, access.remote_dataset_info(repo_id, token), repo_id, key)
    private = bool(dataset.get("private")) if private is None else private
    return PushPlan(run, "dataset", repo_id, private, token, force)


def plan_model_push(
    run: outputs.RunInfo, which: str, repo_id: str | None, private: bool | None, force: bool, key: str = "--repo-id"
) -> PushPlan:
    """A train run's checkpoints push, checked: the steps ``which`` names (a step, last, all or a comma list)
    exist, a repo id, a token that may write there."""
    from runner.lerobot_adapter.checkpoints import checkpoints

    available = checkpoints(run.path / layout.TRAIN_DIR)
    if not available:
        raise ConfigError("RUN", f"is train run {run.id}, which has no complete checkpoint", "train first")
    if which == "all":
        steps = sorted(available)
    elif which == "last":
        steps = [max(available)]
    else:
        wanted = [w.strip() for w in which.split(",")]
        missing = [w for w in wanted if not (w.isdigit() and int(w) in available)]
        if missing:
            raise ConfigError(
                "--checkpoint",
                f"names {', '.join(missing)}, not a checkpoint of train run {run.id} "
                f"(available: {', '.join(map(str, available))})",
                "give a step, last or all",
            )
        steps = sorted({int(w) for w in wanted})
    train = run_config(run).get("train") or {}
    given = repo_id or train.get("hub_repo_id")
    if not given:
        raise ConfigError(
            key,
            "is not set: a policy has no repo id of its own",
            "give one: `runner push RUN --repo-id OWNER/NAME`, or train.hub_repo_id=OWNER/NAME",
        )
    repo_id = refs.check_repo_id(given, key)
    token = access.require_token(key if key != "--repo-id" else "runner push")
    access.check_writer(repo_id, "model", key, token)
    private = bool(train.get("private")) if private is None else private
    return PushPlan(run, "model", repo_id, private, token, force, steps)


def check_before_run(repo_id: str | None, repo_type: str, flag_key: str, repo_key: str) -> None:
    """``<stage>.push_to_hub``: a repo id, and a token that may write there, before the stage records or trains."""
    if not repo_id:
        raise ConfigError(repo_key, f"is not set, but {flag_key} is true", f"name the repo: {repo_key}=OWNER/NAME")
    repo_id = refs.check_repo_id(repo_id, repo_key)
    access.check_writer(repo_id, repo_type, repo_key, access.require_token(flag_key))


def push_at_end(run: Run, repo_type: str, repo_id: str, private: bool, repo_key: str) -> None:
    """The push a record or train run makes when it ends well. A push that fails does not fail the run (its
    data is whole): the error is logged and in run.json, and ``runner push RUN`` finishes it."""
    info = outputs.RunInfo(run.record, str(run.dir))
    try:
        if repo_type == "dataset":
            plan = plan_dataset_push(info, repo_id, private, force=False, key=repo_key)
        else:
            plan = plan_model_push(info, "all", repo_id, private, force=False, key=repo_key)
        plan.live_run = run
        push(plan, ["runner", "push", run.id, *(["--checkpoint", "all"] if repo_type == "model" else [])])
    except (PushFailed, access.PushRefused) as error:
        log.error("%s", error)
    except ConfigError as error:  # the token expired, or the repo changed hands, since the run started
        log.error("not pushed: %s; %s, then `runner push %s`", error, error.fix, run.id)


def push(plan: PushPlan, argv: list[str]) -> dict[str, Any]:
    """Run the push as a run of its own; returns what it pushed (also in both runs' run.json)."""
    parent = _outputs_root(plan.pushed) / plan.pushed.experiment
    entry: dict[str, Any] = {
        "repo_type": plan.repo_type,
        "repo_id": plan.repo_id,
        "url": refs.repo_url(plan.repo_id, plan.repo_type),
    }
    try:
        with utility_run(parent, STAGE, argv, [plan.pushed.id]) as run:
            run.redactor.add_values([plan.token])  # a saved login's token is not in the environment
            entry["run"] = run.id
            run.update(hub=entry)
            log.info("pushing %s %s to %s %s", plan.pushed.stage, plan.pushed.id, plan.repo_type, entry["url"])
            entry.update(_push_dataset(plan) if plan.repo_type == "dataset" else _push_model(plan))
            run.update(hub=entry)
    except access.PushRefused as refused:
        entry.update(status="refused", error=str(refused), at=outputs.now_iso())
        _note_push(plan, entry)
        raise
    except KeyboardInterrupt:
        entry.update(status="interrupted", at=outputs.now_iso())
        _note_push(plan, entry)
        raise
    except Exception as error:
        entry.update(status="failed", error=f"{type(error).__name__}: {error}", at=outputs.now_iso())
        _note_push(plan, entry)
        raise PushFailed(
            f"the push of {plan.pushed.stage} run {plan.pushed.id} to {entry['url']} failed ({type(error).__name__}: "
            f"{error}). The run's data is intact; when the Hub can be reached, `runner push {plan.pushed.id}` "
            "finishes it (files already uploaded are not sent again)."
        ) from error
    entry.update(status="succeeded", at=outputs.now_iso())
    _note_push(plan, entry)
    log.info("pushed to %s (commit %s)", entry["url"], entry.get("commit"))
    return entry


def _note_push(plan: PushPlan, entry: dict[str, Any]) -> None:
    """The pushed run's run.json lists its pushes (its own Run when the push happens at its end)."""
    if plan.live_run is not None:
        plan.live_run.update(pushes=[*(plan.live_run.record.get("pushes") or []), entry])
        return
    path = plan.pushed.path / layout.RUN_JSON
    record = json.loads(path.read_text())
    record["pushes"] = [*(record.get("pushes") or []), entry]
    outputs.write_json_atomic(path, Redactor([plan.token]).data(record))


def _push_dataset(plan: PushPlan) -> dict[str, Any]:
    from huggingface_hub import HfApi

    from runner.lerobot_adapter import hub as lerobot_hub

    root = plan.pushed.path / layout.DATASET_DIR
    tag = lerobot_hub.push_dataset(
        root, plan.repo_id, plan.private, ["runner", plan.pushed.experiment], refs.endpoint()
    )
    commit = _ref_commit(HfApi(token=plan.token), plan.repo_id, "dataset", tag)
    return {"revision": tag, "commit": commit, "pinned": f"{refs.PREFIX}{plan.repo_id}@{commit}"}


def _ref_commit(api: Any, repo_id: str, repo_type: str, tag: str) -> str | None:
    found = api.list_repo_refs(repo_id, repo_type=repo_type)
    return next((t.target_commit for t in found.tags if t.name == tag), None)


def _push_model(plan: PushPlan) -> dict[str, Any]:
    """Each checkpoint one commit on main (its files, the card) tagged ``step-NNNNNN``; a step already on the Hub
    with the same weights is skipped, with other weights refused unless ``force``."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    from runner.lerobot_adapter.checkpoints import PRETRAINED, checkpoints

    api = HfApi(token=plan.token)
    api.create_repo(plan.repo_id, repo_type="model", private=plan.private, exist_ok=True)
    try:
        tags = {t.name: t.target_commit for t in api.list_repo_refs(plan.repo_id).tags}
    except RepositoryNotFoundError:
        tags = {}
    available = checkpoints(plan.pushed.path / layout.TRAIN_DIR)
    config = run_config(plan.pushed)
    comparison = cards.latest_comparison(_outputs_root(plan.pushed), plan.pushed.id)
    pushed_steps = sorted(
        {
            *plan.steps,
            *(
                int(t.removeprefix("step-"))
                for t in tags
                if t.startswith("step-") and t.removeprefix("step-").isdigit()
            ),
        }
    )
    revisions: dict[str, dict[str, Any]] = {}
    for step in plan.steps:
        tag = cards.step_tag(step)
        folder = available[step] / PRETRAINED
        if tag in tags and not plan.force:
            if _same_weights(api, plan.repo_id, tags[tag], folder):
                log.info("checkpoint %d is already on the Hub as %s: skipped", step, tag)
                revisions[str(step)] = {"tag": tag, "commit": tags[tag], "skipped": True}
                continue
            raise access.PushRefused(
                "--checkpoint",
                f"names step {step}, but {plan.repo_id} already has a {tag} with other weights",
                "push into another repo, or pass --force to replace it",
            )
        card = cards.model_card(plan.repo_id, plan.pushed, step, pushed_steps, config, comparison)
        local = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        remote = set(api.list_repo_files(plan.repo_id))
        operations: list[Any] = [CommitOperationAdd(name, str(path)) for name, path in local.items()]
        operations.append(CommitOperationAdd("README.md", card.encode()))
        operations += [
            CommitOperationDelete(name) for name in sorted(remote - set(local) - KEPT_REMOTE_FILES - {"README.md"})
        ]
        commit = api.create_commit(
            plan.repo_id, operations, commit_message=f"runner: train run {plan.pushed.id}, checkpoint {step}"
        )
        if tag in tags:
            api.delete_tag(plan.repo_id, tag=tag)
        api.create_tag(plan.repo_id, tag=tag, revision=commit.oid)
        log.info("checkpoint %d pushed as %s (commit %s)", step, tag, commit.oid)
        revisions[str(step)] = {"tag": tag, "commit": commit.oid, "pinned": f"{refs.PREFIX}{plan.repo_id}@{tag}"}
    last = revisions[str(plan.steps[-1])]
    return {"revision": last["tag"], "commit": last["commit"], "checkpoints": revisions}


def _same_weights(api: Any, repo_id: str, commit: str, folder: Path) -> bool:
    """Whether the commit's model.safetensors is the local one (by the hash the Hub lists for it)."""
    import hashlib

    local = folder / "model.safetensors"
    for entry in api.list_repo_tree(repo_id, revision=commit):
        if getattr(entry, "path", None) != "model.safetensors":
            continue
        if getattr(entry, "lfs", None) is not None:
            return entry.lfs.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
        data = local.read_bytes()
        return entry.blob_id == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return False


def _outputs_root(run: outputs.RunInfo) -> Path:
    """The outputs root holding ``run`` (its experiment folder's parent, or the sweep's)."""
    path = run.path.parent
    while path.name != run.experiment and path.parent != path:
        path = path.parent
    return path.parent
