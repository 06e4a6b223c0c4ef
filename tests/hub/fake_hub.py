"""A Hub-compatible HTTP server for the tests: what `huggingface_hub` 1.x sends to push and pull, on 127.0.0.1.

Test infrastructure, not product. It models the Hub's git side (repos, commits, branches, tags, private repos,
tokens and namespaces) and the error headers `huggingface_hub` turns into its exceptions. It does not model
size limits, LFS or Xet (preupload answers ``uploadMode: regular``, so every file arrives inline in the NDJSON
commit), rate limits, gated repos, fine-grained token scopes, or the Hub's checks of card metadata values
(``/api/validate-yaml`` checks only that a README's metadata block is a YAML mapping).

State lives under ``--root`` (one JSON file per repo, blobs by sha256), so a server killed mid-upload and
started again on the same root has every commit that landed before the kill and none of the one in flight.

    python tests/hub/fake_hub.py --root DIR [--port 0] [--users '{"hf_token": "alice"}'] [--die-on-commit N]

prints ``listening on http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **body: str):
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Store:
    """Repos on disk: ``repos/<type>/<owner>/<name>.json`` holds refs and commits; ``blobs/<sha256>`` the bytes."""

    def __init__(self, root: Path):
        self.root = root
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def _path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / repo_type / f"{repo_id}.json"

    def load(self, repo_type: str, repo_id: str) -> dict | None:
        path = self._path(repo_type, repo_id)
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, repo_type: str, repo_id: str, repo: dict) -> None:
        path = self._path(repo_type, repo_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(repo))
        os.replace(tmp, path)

    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.root / "blobs" / sha
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return sha

    def blob(self, sha: str) -> bytes:
        return (self.root / "blobs" / sha).read_bytes()


def new_commit(repo: dict, parent: str | None, files: dict, title: str) -> str:
    body = json.dumps([parent, sorted(files.items()), title, time.time()]).encode()
    oid = hashlib.sha1(body).hexdigest()
    repo["commits"][oid] = {
        "parent": parent,
        "files": files,
        "title": title,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }
    return oid


def resolve(repo: dict, revision: str) -> str:
    revision = unquote(revision)
    for refs in (repo["branches"], repo["tags"]):
        if revision in refs:
            return refs[revision]
    if revision in repo["commits"]:
        return revision
    raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class Handler(BaseHTTPRequestHandler):
    server: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        if os.environ.get("FAKE_HUB_VERBOSE"):
            super().log_message(format, *args)

    # --- plumbing ------------------------------------------------------------------------------------------

    def _reply(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        if self._read is None:
            self._read = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return self._read

    def _user(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            return None
        token = header.removeprefix("Bearer ")
        if token not in self.server.users:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.server.users[token]

    def _namespaces(self, user: str | None) -> set[str]:
        return {user, *self.server.orgs.get(user, [])} if user else set()

    def _repo(self, repo_type: str, repo_id: str, user: str | None, write: bool = False) -> dict:
        repo = self.server.store.load(repo_type, repo_id)
        owner = repo_id.split("/")[0]
        if repo is None or (repo["private"] and owner not in self._namespaces(user)):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write and owner not in self._namespaces(user):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _route(self) -> None:
        self._read: bytes | None = None
        try:
            self._dispatch()
        except HubError as error:
            self._body()  # an unread body would be parsed as the next request on this kept-alive connection
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._reply(error.status, {"error": error.message, **error.body}, headers)

    do_GET = do_POST = do_DELETE = do_HEAD = _route

    def _dispatch(self) -> None:
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        user = self._user()
        if path == "/api/whoami-v2" and self.command == "GET":
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            orgs = [{"name": org, "type": "org"} for org in self.server.orgs.get(user, [])]
            role = "read" if user in self.server.read_only else "write"
            return self._reply(
                200,
                {
                    "type": "user",
                    "name": user,
                    "orgs": orgs,
                    "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": role}},
                },
            )
        if path == "/api/validate-yaml" and self.command == "POST":
            return self._validate_yaml(json.loads(self._body())["content"])
        if path == "/api/repos/create" and self.command == "POST":
            return self._create_repo(json.loads(self._body()), user)
        match = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(.*))?", path)
        if match:
            repo_type, repo_id, rest = TYPES[match[1]], match[2], match[3] or ""
            return self._api(repo_type, repo_id, rest, query, user)
        match = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match:
            repo_type = TYPES[match[1]] if match[1] else "model"
            return self._resolve_file(repo_type, match[2], match[3], unquote(match[4]), user)
        raise HubError(404, f"no route for {self.command} {path}")

    # --- endpoints -----------------------------------------------------------------------------------------

    def _validate_yaml(self, content: str) -> None:
        """A README's metadata block must be a YAML mapping (the real Hub also checks known keys' values)."""
        import yaml

        match = re.match(r"---\n(.*?)\n---", content, re.DOTALL)
        try:
            metadata = yaml.safe_load(match[1]) if match else {}
        except yaml.YAMLError as error:
            return self._reply(400, {"errors": [{"message": f"invalid YAML: {error}"}]})
        if metadata is not None and not isinstance(metadata, dict):
            return self._reply(400, {"errors": [{"message": "the metadata block is not a mapping"}]})
        self._reply(200, {"errors": [], "warnings": []})

    def _create_repo(self, payload: dict, user: str | None) -> None:
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload['organization'] or user}/{payload['name']}"
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        if user in self.server.read_only:
            raise HubError(403, "You have read access but not the required permissions for this operation")
        if repo_id.split("/")[0] not in self._namespaces(user):
            raise HubError(
                403, f'You don\'t have the rights to create a {repo_type} under the namespace "{repo_id.split("/")[0]}"'
            )
        url = f"{self.server.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
        with self.server.store.lock:
            if self.server.store.load(repo_type, repo_id) is not None:
                raise HubError(409, "You already created this repo", url=url)  # as the Hub answers it
            repo = {
                "private": payload.get("visibility") == "private" or bool(payload.get("private")),
                "branches": {},
                "tags": {},
                "commits": {},
            }
            attributes = self.server.store.put_blob(b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
            repo["branches"]["main"] = new_commit(repo, None, {".gitattributes": attributes}, "initial commit")
            self.server.store.save(repo_type, repo_id, repo)
        self._reply(200, {"url": url, "name": repo_id})

    def _api(self, repo_type: str, repo_id: str, rest: str, query: dict, user: str | None) -> None:
        store = self.server.store
        writes = self.command in ("POST", "DELETE") and not rest.startswith("paths-info")
        with store.lock:
            repo = self._repo(repo_type, repo_id, user, write=writes)
            if writes and user in self.server.read_only:
                raise HubError(403, "You have read access but not the required permissions for this operation")
            head, _, tail = rest.partition("/")
            if head in ("", "revision") and self.command == "GET":
                return self._info(repo_type, repo_id, repo, resolve(repo, tail or "main"))
            if head == "tree" and self.command == "GET":
                revision, _, folder = tail.partition("/")
                recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                return self._tree(repo, resolve(repo, revision), unquote(folder), recursive)
            if head == "refs" and self.command == "GET":

                def refs(kind: str, prefix: str) -> list[dict]:
                    return [
                        {"name": n, "ref": f"refs/{prefix}/{n}", "targetCommit": oid} for n, oid in repo[kind].items()
                    ]

                return self._reply(
                    200, {"branches": refs("branches", "heads"), "tags": refs("tags", "tags"), "converts": []}
                )
            if head == "commits" and self.command == "GET":
                oid, history = resolve(repo, tail or "main"), []
                while oid is not None:
                    commit = repo["commits"][oid]
                    history.append(
                        {"id": oid, "title": commit["title"], "message": "", "authors": [], "date": commit["date"]}
                    )
                    oid = commit["parent"]
                return self._reply(200, history)
            if head == "preupload" and self.command == "POST":
                # The oid of a file already there lets the client skip what is unchanged (how a re-run upload resumes).
                present = repo["commits"][resolve(repo, tail)]["files"]
                answers = []
                for f in json.loads(self._body())["files"]:
                    answer = {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    if f["path"] in present:
                        answer["oid"] = _git_blob_oid(store.blob(present[f["path"]]))
                    answers.append(answer)
                return self._reply(200, {"files": answers})
            if head == "commit" and self.command == "POST":
                return self._commit(repo_type, repo_id, repo, unquote(tail))
            if head == "branch" and self.command == "POST":
                branch = unquote(tail)
                payload = json.loads(self._body() or b"{}")
                if branch in repo["branches"]:
                    raise HubError(409, f"Reference already exists: refs/heads/{branch}")
                repo["branches"][branch] = resolve(repo, payload.get("startingPoint") or "main")
                store.save(repo_type, repo_id, repo)
                return self._reply(200, {})
            if head == "branch" and self.command == "DELETE":
                repo["branches"].pop(unquote(tail), None)
                store.save(repo_type, repo_id, repo)
                return self._reply(200, {})
            if head == "tag" and self.command == "POST":
                payload = json.loads(self._body())
                if payload["tag"] in repo["tags"]:
                    raise HubError(409, f"Tag already exists: {payload['tag']}")
                repo["tags"][payload["tag"]] = resolve(repo, tail)
                store.save(repo_type, repo_id, repo)
                return self._reply(200, {})
            if head == "tag" and self.command == "DELETE":
                if unquote(tail) not in repo["tags"]:
                    raise HubError(404, f"Invalid rev id: {unquote(tail)}", "RevisionNotFound")
                del repo["tags"][unquote(tail)]
                store.save(repo_type, repo_id, repo)
                return self._reply(200, {})
        raise HubError(404, f"no route for {self.command} /api/{repo_type}s/{repo_id}/{rest}")

    def _info(self, repo_type: str, repo_id: str, repo: dict, oid: str) -> None:
        files = repo["commits"][oid]["files"]
        self._reply(
            200,
            {
                "id": repo_id,
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "author": repo_id.split("/")[0],
                "sha": oid,
                "private": repo["private"],
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": repo["commits"][oid]["date"],
                "siblings": [{"rfilename": name} for name in sorted(files)],
            },
        )

    def _tree(self, repo: dict, oid: str, folder: str, recursive: bool) -> None:
        files = repo["commits"][oid]["files"]
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries, folders = [], set()
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            if not recursive and "/" in name.removeprefix(prefix):
                folders.add(prefix + name.removeprefix(prefix).split("/")[0])
                continue
            data = self.server.store.blob(files[name])
            entries.append({"type": "file", "oid": _git_blob_oid(data), "size": len(data), "path": name})
            parts = name.split("/")[:-1]
            folders |= {"/".join(parts[: i + 1]) for i in range(len(parts)) if recursive}
        entries += [
            {"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
            for f in sorted(folders)
            if f.startswith(prefix)
        ]
        self._reply(200, entries)

    def _commit(self, repo_type: str, repo_id: str, repo: dict, revision: str) -> None:
        self.server.commits_seen += 1
        if self.server.commits_seen == self.server.die_on_commit:
            # A dropped link mid-upload: half the body read, then the process is gone (nothing is saved).
            self.rfile.read(int(self.headers.get("Content-Length") or 0) // 2)
            os._exit(17)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        parent = resolve(repo, revision)
        files = dict(repo["commits"][parent]["files"])
        title = "commit"
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                title = value.get("summary") or title
                given = value.get("parentCommit")
                if given and given != parent:
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                data = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                files[value["path"]] = self.server.store.put_blob(data)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"File not found: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for name in [n for n in files if n.startswith(folder)]:
                    del files[name]
            else:  # lfsFile, copies: the things this server does not model
                raise HubError(400, f"this test Hub does not accept '{key}' operations")
        oid = new_commit(repo, parent, files, title)
        if revision in repo["branches"] or revision == "main":
            repo["branches"][revision] = oid
        else:
            raise HubError(400, f"Cannot commit to {revision}: not a branch")
        self.server.store.save(repo_type, repo_id, repo)
        url = f"{self.server.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
        self._reply(200, {"commitUrl": f"{url}/commit/{oid}", "commitOid": oid, "success": True})

    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, name: str, user: str | None) -> None:
        with self.server.store.lock:
            repo = self._repo(repo_type, repo_id, user)
            oid = resolve(repo, revision)
            blob = repo["commits"][oid]["files"].get(name)
        if blob is None:
            raise HubError(404, f"Entry not found: {name}", "EntryNotFound")
        data = self.server.store.blob(blob)
        headers = {
            "X-Repo-Commit": oid,
            "ETag": f'"{_git_blob_oid(data)}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        span = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if span and self.command == "GET":
            start, end = int(span[1]), int(span[2]) if span[2] else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._reply(206, data[start : end + 1], headers)
        self._reply(200, data, headers)


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        root: Path,
        port: int,
        users: dict[str, str],
        orgs: dict[str, list[str]],
        read_only: set[str],
        die_on_commit: int | None,
    ):
        super().__init__(("127.0.0.1", port), Handler)
        self.store = Store(root)
        self.users, self.orgs, self.read_only = users, orgs, read_only
        self.die_on_commit, self.commits_seen = die_on_commit, 0
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--users", default="{}", help="JSON: token -> user name")
    parser.add_argument("--orgs", default="{}", help="JSON: user name -> organisations they may write to")
    parser.add_argument("--read-only", default="", help="comma-separated users whose tokens are read-only")
    parser.add_argument("--die-on-commit", type=int, default=None, help="exit while reading the Nth commit")
    args = parser.parse_args(argv)
    server = HubServer(
        args.root,
        args.port,
        json.loads(args.users),
        json.loads(args.orgs),
        set(filter(None, args.read_only.split(","))),
        args.die_on_commit,
    )
    print(f"listening on {server.endpoint}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
