"""Episode keys from a plain terminal (local or over SSH): no X11, no pynput.

The terminal is put in cbreak mode while recording and restored on every exit path. Arrow keys arrive as
escape sequences; a lone Esc is told apart from them by a short wait for the rest of the sequence.
"""

from __future__ import annotations

import os
import queue
import select
import sys
import termios
import threading
import tty
from enum import Enum


class Key(Enum):
    SUCCESS = "end the episode as a success"
    FAILURE = "end the episode as a failure"
    RERECORD = "discard this episode and record it again"
    STOP = "stop after saving"
    SKIP = "skip the reset period"


BINDINGS = {
    "s": Key.SUCCESS,
    "\x1b[C": Key.SUCCESS,  # right arrow
    "f": Key.FAILURE,
    "r": Key.RERECORD,
    "\x1b[D": Key.RERECORD,  # left arrow
    "q": Key.STOP,
    "\x1b": Key.STOP,  # Esc
    " ": Key.SKIP,
    "n": Key.SKIP,
}
HELP = "keys: s/→ success · f failure · r/← re-record · q/Esc stop · space skip reset"


class KeyReader:
    """Reads keys from a TTY in a background thread; ``poll()`` returns the next one, never blocks."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._keys: queue.Queue[Key] = queue.Queue()
        self._stop = threading.Event()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._read, name="runner-keys", daemon=True)
        self._thread.start()

    @classmethod
    def for_stdin(cls) -> KeyReader | None:
        """A reader on stdin when it is a terminal; None otherwise (CI, pipes: nothing ever blocks)."""
        try:
            fd = sys.stdin.fileno()
        except (ValueError, OSError):
            return None
        return cls(fd) if os.isatty(fd) else None

    def _read(self) -> None:
        pending = ""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                if pending == "\x1b":  # nothing followed the Esc: it was Esc itself
                    self._keys.put(Key.STOP)
                pending = ""
                continue
            try:
                chunk = os.read(self._fd, 16).decode(errors="ignore")
            except OSError:
                return
            for char in chunk:
                pending += char
                if pending in BINDINGS and pending != "\x1b":
                    self._keys.put(BINDINGS[pending])
                    pending = ""
                elif not any(sequence.startswith(pending) for sequence in BINDINGS):
                    pending = ""

    def poll(self) -> Key | None:
        try:
            return self._keys.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
