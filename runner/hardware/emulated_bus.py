"""An SO-100/SO-101 servo bus emulated behind a real serial port (a pty), speaking Feetech's protocol 0.

Where no arm is plugged in (CI, a laptop on a train), LeRobot's own ``FeetechMotorsBus`` and the robot
classes on top of it open this pty exactly as they would open ``/dev/ttyACM0``: every byte goes through
pyserial and Feetech's SDK. The emulator answers PING, READ, WRITE, SYNC_READ and SYNC_WRITE for six
STS3215 servos (ids 1-6) with the STS control table, and moves each present position toward its goal
while torque is on. Faults can be injected: a servo that stops answering, or the whole bus unplugged.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from dataclasses import dataclass, field
from pathlib import Path

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
PING, READ, WRITE, REG_WRITE, ACTION, RESET, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x82, 0x83
STS3215_MODEL = 777
# STS control table addresses (LeRobot's lerobot/motors/feetech/tables.py).
FIRMWARE_MAJOR, FIRMWARE_MINOR, MODEL_NUMBER, ID_ADDRESS = 0, 1, 3, 5
MIN_POSITION, MAX_POSITION, HOMING_OFFSET = 9, 11, 31
TORQUE_ENABLE, GOAL_POSITION, LOCK, PRESENT_POSITION = 40, 42, 55, 56
PRESENT_VOLTAGE, PRESENT_TEMPERATURE = 62, 63
# How far a servo under torque moves toward its goal per bus transaction (raw steps of 4096 per turn).
STEP_PER_TRANSACTION = 64

# Where `runner emulate` serves the arms' ports and calibration (conf/host/emulated.yaml reads the same).
DIR_ENV = "RUNNER_EMULATED_DIR"
DEFAULT_DIR = "/tmp/runner-emulated"


def emulated_dir() -> Path:
    return Path(os.environ.get(DIR_ENV, DEFAULT_DIR))


def checksum(body: bytes) -> int:
    return ~sum(body) & 0xFF


def packet(servo_id: int, code: int, params: bytes = b"") -> bytes:
    """A Feetech packet: header, id, length, instruction (or error), parameters, checksum."""
    body = bytes([servo_id, len(params) + 2, code]) + params
    return HEADER + body + bytes([checksum(body)])


@dataclass
class Servo:
    """One servo's memory (the control table) and the state the emulator keeps beside it."""

    servo_id: int
    model: int = STS3215_MODEL
    memory: bytearray = field(default_factory=lambda: bytearray(256))
    answering: bool = True

    def __post_init__(self) -> None:
        self.memory[FIRMWARE_MAJOR], self.memory[FIRMWARE_MINOR] = 3, 10
        self._write_word(MODEL_NUMBER, self.model)
        self.memory[ID_ADDRESS] = self.servo_id
        self._write_word(MIN_POSITION, 0)
        self._write_word(MAX_POSITION, 4095)
        self._write_word(GOAL_POSITION, 2048)
        self._write_word(PRESENT_POSITION, 2048)
        self.memory[PRESENT_VOLTAGE], self.memory[PRESENT_TEMPERATURE] = 120, 30

    def _write_word(self, address: int, value: int) -> None:
        self.memory[address : address + 2] = int(value & 0xFFFF).to_bytes(2, "little")

    def word(self, address: int) -> int:
        return int.from_bytes(self.memory[address : address + 2], "little")

    def read(self, address: int, length: int) -> bytes:
        return bytes(self.memory[address : address + length])

    def write(self, address: int, data: bytes) -> None:
        self.memory[address : address + len(data)] = data

    def tick(self) -> None:
        """Move the present position one step toward the goal while torque is enabled."""
        if not self.memory[TORQUE_ENABLE]:
            return
        present, goal = self.word(PRESENT_POSITION), self.word(GOAL_POSITION)
        move = max(-STEP_PER_TRANSACTION, min(STEP_PER_TRANSACTION, goal - present))
        self._write_word(PRESENT_POSITION, present + move)

    def set_present(self, raw: int) -> None:
        """Where a hand moved the (torque-free) servo."""
        self._write_word(PRESENT_POSITION, raw)


class EmulatedFeetechBus:
    """A pty whose other end behaves like a bus of Feetech servos; use as a context manager."""

    def __init__(self, ids: tuple[int, ...] = (1, 2, 3, 4, 5, 6), model: int = STS3215_MODEL) -> None:
        self.servos = {i: Servo(i, model) for i in ids}
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no newline translation: a bus carries bytes
        self.port = os.ttyname(self._slave)
        self.plugged = True
        self.transactions = 0
        self._buffer = bytearray()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="emulated-feetech-bus", daemon=True)

    def __enter__(self) -> EmulatedFeetechBus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- faults ------------------------------------------------------------------------------------

    def mute(self, servo_id: int) -> None:
        """The servo stops answering (a loose cable to one motor)."""
        self.servos[servo_id].answering = False

    def unplug(self) -> None:
        """Nothing answers any more (the USB cable pulled)."""
        self.plugged = False

    # --- the bus -----------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if not self.plugged:
                continue  # nothing on the other end of the cable hears it
            self._buffer += data
            for servo_id, code, params in self._packets():
                reply = self._handle(servo_id, code, params)
                if reply and self.plugged:
                    os.write(self._master, reply)

    def _packets(self):
        """Complete, valid packets from the buffer; garbage before a header is dropped."""
        while True:
            start = self._buffer.find(HEADER)
            if start < 0:
                self._buffer.clear()
                return
            del self._buffer[:start]
            if len(self._buffer) < 4:
                return
            length = self._buffer[3]
            end = 4 + length
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[2 : end - 1])
            valid = checksum(body) == self._buffer[end - 1]
            del self._buffer[:end]
            if valid:
                yield body[0], body[2], body[3:]

    def _status(self, servo: Servo, params: bytes = b"") -> bytes:
        return packet(servo.servo_id, 0, params) if servo.answering else b""

    def _handle(self, servo_id: int, code: int, params: bytes) -> bytes:
        with self._lock:
            self.transactions += 1
            for servo in self.servos.values():
                servo.tick()
            if code == SYNC_WRITE:
                address, length = params[0], params[1]
                for offset in range(2, len(params), length + 1):
                    servo = self.servos.get(params[offset])
                    if servo is not None and servo.answering:
                        servo.write(address, params[offset + 1 : offset + 1 + length])
                return b""
            if code == SYNC_READ:
                address, length = params[0], params[1]
                replies = [self.servos.get(i) for i in params[2:]]
                return b"".join(self._status(s, s.read(address, length)) for s in replies if s is not None)
            targets = list(self.servos.values()) if servo_id == BROADCAST_ID else [self.servos.get(servo_id)]
            replies = []
            for servo in targets:
                if servo is None:
                    continue
                if code == PING:
                    replies.append(self._status(servo))
                elif code == READ:
                    replies.append(self._status(servo, servo.read(params[0], params[1])))
                elif code in (WRITE, REG_WRITE):
                    servo.write(params[0], params[1:])
                    if servo_id != BROADCAST_ID:
                        replies.append(self._status(servo))
                elif code in (ACTION, RESET) and servo_id != BROADCAST_ID:
                    replies.append(self._status(servo))
            return b"".join(replies)
