"""One row of ``runner doctor``: what was checked, how it went and the fix. Also what a stage's pre-run
hardware check returns (``runner.hardware.checks``), so both speak the same words."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    # Hardware rows: the calibration file in use and its SHA-256, recorded by the stages that use the arm.
    calibration: dict | None = None
