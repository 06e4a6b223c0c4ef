"""episodes.csv, the one table of episodes every stage writes: a row per attempt (record) or per episode
(eval), rewritten atomically as each one ends, so a kill never leaves half a row; also to its copies (the
recorded dataset's meta/runner_episodes.csv travels with the dataset)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from runner.core import outputs


class EpisodesTable:
    """The rows of ``path`` (read back when it exists: a resumed recording continues its table)."""

    def __init__(self, path: Path, columns: Sequence[str], copies: Iterable[Path] = ()) -> None:
        self.path, self.columns, self.copies = path, list(columns), list(copies)
        self.rows: list[dict[str, str]] = []
        if path.exists():
            with open(path, newline="") as f:
                self.rows = list(csv.DictReader(f))

    def append(self, row: dict) -> None:
        self.rows.append({key: str(value) for key, value in row.items()})
        self._write()

    def replace(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows
        self._write()

    def _write(self) -> None:
        for path in (self.path, *(copy for copy in self.copies if copy.parent.exists())):
            outputs.write_csv_atomic(path, self.columns, self.rows)
