"""``hf:OWNER/NAME`` or ``hf:OWNER/NAME@REVISION`` in a config value: a Hub repo, pulled into the local Hugging Face
cache before the run starts and pinned to the commit it resolved to, so a rerun can ask for the same bytes.

The syntax needs no quoting on a shell or a Hydra command line: ``dataset_run=hf:alice/pick@v3.0``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core.errors import ConfigError

PREFIX = "hf:"
PUBLIC_ENDPOINT = "https://huggingface.co"
# The Hub's own rule for a repo name, with the owner required: a bare name would mean the token's user.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def endpoint() -> str:
    """The Hub this process talks to (what ``huggingface_hub`` read from ``HF_ENDPOINT`` at import)."""
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def check_repo_id(repo_id: str, key: str) -> str:
    """``repo_id`` if it is a Hub repo id (``owner/name``), else a config error naming ``key``."""
    bad = not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id or repo_id.endswith((".git", "."))
    if bad:
        raise ConfigError(
            key,
            f"is '{repo_id}', not a Hub repo id",
            "give OWNER/NAME: letters, digits, '-', '_' and '.', e.g. alice/so101_pick",
        )
    return repo_id


def repo_url(repo_id: str, repo_type: str) -> str:
    return f"{endpoint()}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: str | None  # None: the default branch

    def __str__(self) -> str:
        return f"{PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def parse(value: str, key: str) -> HubRef:
    """``hf:OWNER/NAME[@REVISION]`` into its parts; anything else is a config error naming ``key``."""
    body = value.removeprefix(PREFIX)
    repo_id, at, revision = body.partition("@")
    if at and not revision:
        raise ConfigError(
            key,
            f"is '{value}', which ends in '@' without a revision",
            "give a branch, tag or commit after '@' (hf:OWNER/NAME@v3.0), or drop the '@'",
        )
    check_repo_id(repo_id, key)
    return HubRef(repo_id, revision or None)


@dataclass(frozen=True)
class Pulled:
    """A Hub repo in the local cache at one commit."""

    ref: HubRef
    repo_type: str  # "dataset" or "model"
    commit: str
    folder: Path

    def record(self) -> dict[str, Any]:
        """What run.json keeps of it: enough to fetch the same bytes again (``hf:REPO@COMMIT``)."""
        return {
            "hub": self.repo_type,
            "repo_id": self.ref.repo_id,
            "revision": self.ref.revision or "main",
            "commit": self.commit,
            "url": repo_url(self.ref.repo_id, self.repo_type),
            "pinned": f"{PREFIX}{self.ref.repo_id}@{self.commit}",
        }


def pull(value: str, repo_type: str, key: str) -> Pulled:
    """Download (or, offline, find in the cache) the repo ``value`` names at its revision, before anything runs.

    Every failure is a config error naming ``key``: a repo that does not exist or is private to someone else, an
    unknown revision, a token the Hub refuses, a repo not in the cache while ``HF_HUB_OFFLINE=1``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    ref = parse(value, key)
    kind = "dataset" if repo_type == "dataset" else "model"
    try:
        folder = Path(snapshot_download(ref.repo_id, repo_type=repo_type, revision=ref.revision))
    except RevisionNotFoundError:
        raise ConfigError(
            key,
            f"names revision '{ref.revision}', which {kind} repo {ref.repo_id} does not have",
            "give a branch, tag or commit of that repo, or drop @REVISION for its default branch",
        ) from None
    except GatedRepoError:
        raise ConfigError(
            key,
            f"names {kind} repo {ref.repo_id}, which is gated",
            f"accept its conditions on {repo_url(ref.repo_id, repo_type)}, then retry",
        ) from None
    except RepositoryNotFoundError:
        raise ConfigError(
            key,
            f"names {kind} repo {ref.repo_id} on {endpoint()}, which does not exist or is private",
            "check the OWNER/NAME; for a private repo, log in with `hf auth login` or set HF_TOKEN "
            "to a token that may read it",
        ) from None
    except LocalEntryNotFoundError:
        at = f" at {ref.revision}" if ref.revision else ""
        if offline():
            raise ConfigError(
                key,
                f"names {kind} repo {ref.repo_id}{at}, which is not in the local Hugging Face "
                "cache, and HF_HUB_OFFLINE=1 forbids downloading it",
                "unset HF_HUB_OFFLINE for one run to fetch it (later runs find it in the cache), or "
                f"`hf download {ref.repo_id} --repo-type {repo_type}`",
            ) from None
        raise ConfigError(
            key,
            f"names {kind} repo {ref.repo_id}{at}, but {endpoint()} could not be reached and "
            "the local cache does not have it",
            "check the network (HF_ENDPOINT names the Hub), or set HF_HUB_OFFLINE=1 to use only what is cached",
        ) from None
    except HfHubHTTPError as error:
        if error.response is not None and error.response.status_code == 401:
            raise ConfigError(
                key,
                f"could not be read: the Hub refuses the token ({_token_source()})",
                "log in again with `hf auth login`, or unset HF_TOKEN for a public repo",
            ) from None
        raise
    return Pulled(ref, repo_type, folder.name, folder)


def _token_source() -> str:
    return "HF_TOKEN" if os.environ.get("HF_TOKEN") else "the saved `hf auth login`"


def policy_folder(value: str, key: str) -> tuple[Path, dict[str, Any] | None]:
    """A LeRobot policy given as a folder (a checkpoint, its pretrained_model, a downloaded policy) or a Hub model
    (pulled first): the policy folder, and for the Hub what run.json records of it."""
    from runner.lerobot_adapter.checkpoints import PRETRAINED, is_policy_folder

    hub = None
    if is_hub_ref(value):
        pulled = pull(value, "model", key)
        folder, hub = pulled.folder, pulled.record()
    else:
        folder = Path(value).expanduser()
    if not is_policy_folder(folder) and is_policy_folder(folder / PRETRAINED):
        folder = folder / PRETRAINED
    if not is_policy_folder(folder):
        raise ConfigError(
            key,
            f"is {value}, which is not a LeRobot policy (no config.json and model.safetensors)",
            "give a checkpoint's pretrained_model folder, a policy folder, or a Hub model (hf:OWNER/NAME@REVISION)",
        )
    return folder.resolve(), hub
