"""Before a push is promised (``dataset.push_to_hub``, ``train.push_to_hub``, ``runner push``): a token exists, the
Hub accepts it, it may write to the repo's owner, and the repo does not hold another robot's dataset. Checked
before recording or training starts, not after an hour of demonstrations."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core.errors import ConfigError
from runner.hub import refs

log = logging.getLogger("runner.hub")

LOGIN = "run `hf auth login` (it saves the token in the Hugging Face home, never in runner's outputs) or set HF_TOKEN"


class PushRefused(ValueError):
    """A push the Hub or the repo's contents would not take; raised before anything is uploaded."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"`{key}` {problem}. {fix[0].upper()}{fix[1:]}.")
        self.key, self.problem, self.fix = key, problem, fix


@dataclass(frozen=True)
class Writer:
    """Who the token belongs to, when the Hub could be asked (None when it could not be reached)."""

    user: str | None
    namespaces: frozenset[str]


def require_token(key: str) -> str:
    """The token a push will use: ``HF_TOKEN`` or the saved login; none is a config error naming ``key``."""
    from huggingface_hub import get_token

    if refs.offline():
        raise ConfigError(
            key,
            "is true, but HF_HUB_OFFLINE=1 forbids reaching the Hub",
            "unset HF_HUB_OFFLINE for this run, or push later with `runner push RUN`",
        )
    token = get_token()
    if not token:
        raise ConfigError(
            key,
            "asks for a push, but no Hugging Face token was found (neither HF_TOKEN nor a saved login)",
            f"{LOGIN}, or set {key}=false",
        )
    return token


def check_writer(repo_id: str, repo_type: str, key: str, token: str) -> Writer:
    """The Hub accepts the token, and it may write under ``repo_id``'s owner. A Hub that cannot be reached is
    not an error here (the network at a hackathon comes and goes): the push itself then fails, and
    ``runner push`` finishes it later."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        me = HfApi(token=token).whoami()
    except HfHubHTTPError as error:
        if error.response is not None and error.response.status_code == 401:
            raise ConfigError(
                "HF_TOKEN",
                f"is refused by {refs.endpoint()} (invalid or expired)",
                f"create a new token with write access and {LOGIN}",
            ) from None
        log.warning("could not check the Hub token (%s); the push may fail, then `runner push` finishes it", error)
        return Writer(None, frozenset())
    except OSError as error:  # httpx's connection errors are OSErrors
        log.warning(
            "%s could not be reached to check the token (%s); the push may fail, then `runner push` finishes it",
            refs.endpoint(),
            error,
        )
        return Writer(None, frozenset())
    user = me.get("name")
    namespaces = frozenset({user, *(org.get("name") for org in me.get("orgs") or [])})
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise ConfigError(
            "HF_TOKEN", f"belongs to {user} but is a read-only token", f"create a token with write access, then {LOGIN}"
        )
    owner = repo_id.split("/")[0]
    if owner not in namespaces:
        raise ConfigError(
            key,
            f"is {repo_id}, but the token belongs to {user}, who may write only under "
            f"{', '.join(sorted(n for n in namespaces if n))}",
            f"give a repo under one of those ({key}={user}/{repo_id.split('/')[1]}), or log in as {owner}",
        )
    return Writer(user, namespaces)


def remote_dataset_info(repo_id: str, token: str) -> dict[str, Any] | None:
    """``meta/info.json`` of the dataset repo on the Hub's default branch; None when the repo or file is absent."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError

    try:
        path = hf_hub_download(repo_id, "meta/info.json", repo_type="dataset", token=token)
    except (RepositoryNotFoundError, RemoteEntryNotFoundError):
        return None
    except (HfHubHTTPError, OSError) as error:
        log.warning("could not read %s's meta/info.json (%s): its features are not compared", repo_id, error)
        return None
    return json.loads(Path(path).read_text())


def check_same_features(local: dict[str, Any], remote: dict[str, Any] | None, repo_id: str, key: str) -> None:
    """A dataset repo holds one robot's data: pushing another robot's features (or fps) over it is refused."""
    if remote is None:
        return

    def shape(info: dict) -> dict:
        return {name: (f.get("dtype"), list(f.get("shape") or [])) for name, f in info.get("features", {}).items()}

    ours, theirs = shape(local), shape(remote)
    if ours == theirs and local.get("fps") == remote.get("fps") and local.get("robot_type") == remote.get("robot_type"):
        return
    differences = sorted(set(ours) ^ set(theirs)) or sorted(k for k in ours if ours[k] != theirs.get(k))
    features = f"; features that differ: {', '.join(differences[:4])}{', ...' if len(differences) > 4 else ''}"

    def robot(info: dict) -> str:
        return f"{info.get('robot_type') or 'an unnamed robot'} at {info.get('fps')} fps"

    raise PushRefused(
        key,
        f"is {repo_id}, which holds another dataset on the Hub ({robot(remote)}), not this recording's "
        f"({robot(local)}){features if differences else ''}",
        "push into a new repo (another hub_repo_id), or pass --force to `runner push` to replace it",
    )
