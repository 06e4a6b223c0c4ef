"""Which device an error came from: a camera found on its traceback, an arm and its silent motors."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lerobot.robots.robot import Robot
    from lerobot.teleoperators.teleoperator import Teleoperator


BUS_SETTLE_S = 0.1


def _owners(error: BaseException) -> list[int]:
    """The ids of the objects whose methods ``error`` passed through, outermost first."""
    owners, frame = [], error.__traceback__
    while frame is not None:
        owners.append(id(frame.tb_frame.f_locals.get("self")))
        frame = frame.tb_next
    return owners


def camera_role(device: Robot | Teleoperator, error: BaseException) -> str | None:
    """The role of the device's camera that raised ``error`` (found on its traceback), or None."""
    roles = {id(camera): role for role, camera in getattr(device, "cameras", {}).items()}
    return next((roles[owner] for owner in reversed(_owners(error)) if owner in roles), None)


def raised_by(device: Robot | Teleoperator | None, error: BaseException) -> bool:
    """Whether ``error`` came out of one of the device's own methods."""
    return device is not None and id(device) in _owners(error)


def silent_motors(device: Robot | Teleoperator) -> tuple[list[str], int]:
    """The arm's motors that no longer answer a ping, as "<id> (<joint>)", and how many motors it has."""
    bus = getattr(device, "bus", None)
    if bus is None:
        return [], 0
    # The motors that did answer the failed read may still be replying: let the line go quiet and drop
    # those replies, or each ping would read the one before it.
    time.sleep(BUS_SETTLE_S)
    with contextlib.suppress(Exception):
        bus.port_handler.ser.reset_input_buffer()
    silent = []
    for name, motor in bus.motors.items():
        try:
            answer = bus.ping(name, num_retry=2)  # one missed reply on a busy bus is not a silent motor
        except Exception:  # the port itself is gone
            answer = None
        if answer is None:
            silent.append(f"{motor.id} ({name})")
    return silent, len(bus.motors)
