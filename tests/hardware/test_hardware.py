"""Real-arm glue against an emulated SO-101 servo bus: a pty speaking Feetech's protocol to LeRobot's bus."""

import csv
import hashlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import run_dirs, run_runner

from runner.hardware.emulated_bus import EmulatedFeetechBus

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@pytest.fixture
def emulated():
    with EmulatedFeetechBus() as bus:
        yield bus


def _calibration(path, range_max=4095):
    entries = {name: {"id": i + 1, "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": range_max}
               for i, name in enumerate(JOINTS)}  # fmt: skip
    path.write_text(json.dumps(entries))


def _doctor(*overrides):
    result = run_runner("doctor", "--json", "teleop=none", "cameras=none", *overrides)
    assert result.stdout, result.stderr[-3000:]
    return {c["name"]: c for c in json.loads(result.stdout) if c["name"].startswith("robot ")}


def test_lerobot_bus_talks_to_the_emulated_servos(emulated):
    from lerobot.motors import Motor, MotorNormMode
    from lerobot.motors.feetech import FeetechMotorsBus

    motors = {name: Motor(i + 1, "sts3215", MotorNormMode.RANGE_M100_100) for i, name in enumerate(JOINTS)}
    bus = FeetechMotorsBus(port=emulated.port, motors=motors)
    bus.connect()  # LeRobot's handshake: every id answers with the STS3215 model number, same firmware
    assert bus.broadcast_ping() == {i: 777 for i in range(1, 7)}
    assert bus.sync_read("Present_Position", normalize=False) == dict.fromkeys(JOINTS, 2048)
    bus.enable_torque()
    bus.sync_write("Goal_Position", {"gripper": 2400}, normalize=False)
    for _ in range(10):
        present = bus.sync_read("Present_Position", normalize=False)
    assert present["gripper"] == 2400 and present["shoulder_pan"] == 2048
    bus.disconnect()  # releases torque on every motor
    assert all(servo.memory[40] == 0 for servo in emulated.servos.values())


def test_doctor_probes_the_arm_and_names_the_missing_calibration(emulated, tmp_path):
    rows = _doctor("robot=so101_follower", f"robot.port={emulated.port}", f"robot.calibration_dir={tmp_path}")
    prefix = "robot so101_follower (follower)"
    assert rows[f"{prefix} port"]["status"] == "ok"
    assert rows[f"{prefix} motors"]["status"] == "ok" and "ids 1, 2, 3, 4, 5, 6" in rows[f"{prefix} motors"]["detail"]
    calibration = rows[f"{prefix} calibration"]
    assert calibration["status"] == "fail" and "no calibration for id 'follower'" in calibration["detail"]
    assert "lerobot-calibrate --robot.type=so101_follower" in calibration["fix"]
    assert "runner calibrate robot=so101_follower teleop=none" in calibration["fix"]
    assert all(servo.memory[40] == 0 for servo in emulated.servos.values())  # nothing was moved


def test_doctor_accepts_a_matching_calibration_and_flags_a_stale_one(emulated, tmp_path):
    _calibration(tmp_path / "follower.json")
    rows = _doctor("robot=so101_follower", f"robot.port={emulated.port}", f"robot.calibration_dir={tmp_path}")
    assert rows["robot so101_follower (follower) calibration"]["status"] == "ok"
    _calibration(tmp_path / "follower.json", range_max=3000)  # another arm's calibration
    rows = _doctor("robot=so101_follower", f"robot.port={emulated.port}", f"robot.calibration_dir={tmp_path}")
    stale = rows["robot so101_follower (follower) calibration"]
    assert stale["status"] == "fail" and "shoulder_pan" in stale["detail"] and "recalibrate" in stale["fix"]


def test_doctor_names_a_motor_that_does_not_answer(emulated, tmp_path):
    emulated.mute(3)
    rows = _doctor("robot=so101_follower", f"robot.port={emulated.port}", f"robot.calibration_dir={tmp_path}")
    motors = rows["robot so101_follower (follower) motors"]
    assert motors["status"] == "fail" and "motor 3 (elbow_flex) does not answer" in motors["detail"]
    assert "daisy-chain" in motors["fix"]


def test_doctor_names_a_port_that_is_not_there(tmp_path):
    rows = _doctor(
        "robot=so101_follower", "robot.port=/dev/serial/by-id/usb-nothing-here", f"robot.calibration_dir={tmp_path}"
    )
    port = rows["robot so101_follower (follower) port"]
    assert port["status"] == "fail" and "does not exist" in port["detail"] and "find-port" in port["fix"]


def test_doctor_says_start_runner_emulate_when_the_emulated_host_has_no_arm_served(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_EMULATED_DIR", str(tmp_path / "not-served"))
    rows = _doctor("host=emulated", "robot=so101_follower")
    port = rows["robot so101_follower (follower) port"]
    assert port["status"] == "fail" and "runner emulate" in port["fix"] and "plug" not in port["fix"]


def test_doctor_names_the_host_profile_key_when_no_port_is_known(tmp_path):
    rows = _doctor("~host", "robot=so101_follower", f"robot.calibration_dir={tmp_path}")
    port = rows["robot so101_follower (follower) port"]
    assert port["status"] == "fail" and "host.ports.follower" in port["detail"]


def _wait_for(buffer: list[str], text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in "".join(buffer):
        assert time.monotonic() < deadline, f"never saw {text!r} in {''.join(buffer)[-2000:]}"
        time.sleep(0.05)


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_calibrate_runs_lerobot_calibration_on_the_bus_and_keeps_a_hashed_copy(emulated, tmp_path, outputs_root):
    moving = threading.Event()

    def move_joints():  # the user sweeping every joint through its range
        step = 0
        while not moving.is_set():
            for servo in emulated.servos.values():
                servo.set_present(1500 + (step * 37 + servo.servo_id * 100) % 1100)
            step += 1
            time.sleep(0.01)

    terminal, slave = pty.openpty()  # the user's terminal: LeRobot's prompts wait for Enter on it
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "calibrate", "robot=so101_follower", "teleop=none",
         f"robot.port={emulated.port}", f"robot.calibration_dir={tmp_path}"],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    os.close(slave)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(lambda: process.stdout.read(1), "")), daemon=True)
    reader.start()
    mover = threading.Thread(target=move_joints, daemon=True)
    try:
        _wait_for(output, "middle of its range of motion")
        os.write(terminal, b"\n")
        _wait_for(output, "Press ENTER to stop")
        mover.start()
        time.sleep(1.5)
        os.write(terminal, b"\n")
        assert process.wait(timeout=120) == 0, "".join(output)[-3000:]
    finally:
        moving.set()
        if process.poll() is None:
            process.kill()
        os.close(terminal)
    calibration = json.loads((tmp_path / "follower.json").read_text())
    assert set(calibration) == set(JOINTS)
    assert all(c["range_min"] < c["range_max"] for c in calibration.values())
    [run] = [p.parent for p in outputs_root.rglob("run.json")]
    record = json.loads((run / "run.json").read_text())
    saved = record["calibration"]["robot"]
    assert saved["sha256"] == hashlib.sha256((tmp_path / "follower.json").read_bytes()).hexdigest()
    assert (run / "calibration" / "robot_follower.json").read_text() == (tmp_path / "follower.json").read_text()
    assert all(servo.memory[40] == 0 for servo in emulated.servos.values())  # torque released at the end
    rows = _doctor("robot=so101_follower", f"robot.port={emulated.port}", f"robot.calibration_dir={tmp_path}")
    assert rows["robot so101_follower (follower) calibration"]["status"] == "ok"


def _arms(bus_follower, bus_leader, calibration_dir):
    return ["robot=so101_follower", "teleop=so101_leader", "cameras=none", f"robot.port={bus_follower.port}",
            f"teleop.port={bus_leader.port}", f"robot.calibration_dir={calibration_dir}",
            f"teleop.calibration_dir={calibration_dir}", "episode.fps=10", "episode.reset_time_s=0",
            "episode.early_stop.keys=false"]  # fmt: skip


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_record_on_emulated_arms_uses_lerobot_robot_classes_and_records_the_calibration(tmp_path, outputs_root):
    from conftest import run_runner

    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        _calibration(tmp_path / "follower.json")
        _calibration(tmp_path / "leader.json")
        leader.servos[6].set_present(3000)  # the operator holds the leader's gripper open
        result = run_runner("record", *_arms(follower, leader, tmp_path), "episode.num_episodes=2",
                            "episode.episode_time_s=1", timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert all(servo.memory[40] == 0 for servo in follower.servos.values())  # torque released
        assert follower.servos[6].word(42) > 2048  # the follower was commanded toward the leader
    [run] = [p.parent for p in outputs_root.rglob("run.json")]
    record = json.loads((run / "run.json").read_text())
    digest = hashlib.sha256((tmp_path / "follower.json").read_bytes()).hexdigest()
    assert record["calibration"]["robot"] == {
        "id": "follower",
        "file": str(tmp_path / "follower.json"),
        "sha256": digest,
    }
    assert record["episodes"]["kept"] == 2
    info = json.loads((run / "dataset" / "meta" / "info.json").read_text())
    assert info["robot_type"] == "so_follower" or info["robot_type"].startswith("so10")
    assert info["features"]["observation.state"]["names"][0] == "shoulder_pan.pos"


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_record_refuses_an_uncalibrated_arm_before_anything_moves(tmp_path, outputs_root):
    from conftest import run_runner

    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        _calibration(tmp_path / "leader.json")
        result = run_runner("record", *_arms(follower, leader, tmp_path), "episode.num_episodes=1", timeout=300)
        assert all(servo.memory[40] == 0 for servo in follower.servos.values())
    assert result.returncode == 2
    assert "no calibration for id 'follower'" in result.stderr and "lerobot-calibrate" in result.stderr
    assert not list(outputs_root.rglob("run.json"))


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_sigterm_while_recording_on_real_arms_releases_torque(tmp_path, outputs_root):
    from conftest import start_runner, wait_for_log, wait_until

    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        _calibration(tmp_path / "follower.json")
        _calibration(tmp_path / "leader.json")
        process = start_runner("record", *_arms(follower, leader, tmp_path), "episode.num_episodes=3",
                               "episode.episode_time_s=60")  # fmt: skip
        wait_for_log(process, "episode 1/3", "started")
        holding = lambda: any(servo.memory[40] == 1 for servo in follower.servos.values())  # noqa: E731
        wait_until(holding, "the follower holds its pose (torque on)", process=process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert process.returncode == 143
        assert all(servo.memory[40] == 0 for servo in follower.servos.values())
    [run] = [p.parent for p in outputs_root.rglob("run.json")]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_an_arm_unplugged_mid_episode_loses_only_that_episode(tmp_path, outputs_root):
    from conftest import start_runner

    from runner.lerobot_adapter.datasets import load_dataset

    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        _calibration(tmp_path / "follower.json")
        _calibration(tmp_path / "leader.json")
        process = start_runner("record", *_arms(follower, leader, tmp_path), "episode.num_episodes=3",
                               "episode.episode_time_s=1.5", "episode.early_stop.idle_s=null")  # fmt: skip
        log = []
        for line in process.stderr:
            log.append(line)
            if "episode 2/3" in line and "started" in line:
                follower.unplug()
        assert process.wait(timeout=120) == 1
    stderr = "".join(log)
    assert "the follower arm (so101_follower) stopped answering: no motor answers" in stderr
    assert "during episode 2/3" in stderr
    assert "That episode was discarded; the 1 kept before it are saved" in stderr and "resume=" in stderr
    [run] = run_dirs(outputs_root)
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert "did not confirm torque off" in (run / "run.log").read_text()  # the release was attempted
    rows = (run / "episodes.csv").read_text().splitlines()[1:]
    assert ",device_lost," in rows[-1] and len(rows) == 2
    dataset = load_dataset(run / "dataset", "local/runner")
    assert dataset.num_episodes == 1 and len(dataset) == 15  # 1.5 s at 10 fps, all of it loads
    dataset[len(dataset) - 1]


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_teleoperate_follows_the_leader_and_reports_its_loop_rate(tmp_path, outputs_root):
    from conftest import run_runner

    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        _calibration(tmp_path / "follower.json")
        _calibration(tmp_path / "leader.json")
        leader.servos[1].set_present(2300)  # the operator turned the leader's shoulder
        result = run_runner("teleoperate", *_arms(follower, leader, tmp_path), "duration_s=2", timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert follower.servos[1].word(42) > 2048  # the follower was sent toward the leader's pose
        assert all(servo.memory[40] == 0 for servo in follower.servos.values())  # torque released at the end
    [run] = [p.parent for p in outputs_root.rglob("run.json")]
    record = json.loads((run / "run.json").read_text())
    report = record["teleoperation"]
    assert report["ended_by"] == "duration" and report["steps"] >= 10 and report["rate_hz_mean"] > 5
    assert record["calibration"]["teleop"]["id"] == "leader"


def test_find_port_names_the_port_that_disappears_and_writes_the_host_profile(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    profile = tmp_path / "host" / "local.yaml"
    profile.parent.mkdir()
    profile.write_text("name: local\nports:\n  leader: /dev/serial/by-id/usb-leader\ncalibration_dir: /cal\n")
    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        arm = by_id / "usb-1a86_USB_Single_Serial_FOLLOWER-if00"
        arm.symlink_to(follower.port)
        (by_id / "usb-1a86_USB_Single_Serial_LEADER-if00").symlink_to(leader.port)
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "find-port", "--role", "follower", "--profile", str(profile)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RUNNER_SERIAL_BY_ID": str(by_id)},
        )  # fmt: skip
        output: list[str] = []
        threading.Thread(target=lambda: output.extend(iter(lambda: process.stdout.read(1), "")), daemon=True).start()
        _wait_for(output, "Unplug the USB cable of the follower arm")
        arm.unlink()  # the user pulls the follower's cable
        process.stdin.write("\n")
        process.stdin.flush()
        _wait_for(output, "Plug it back in")
        arm.symlink_to(follower.port)
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=60) == 0, "".join(output)
    import yaml

    written = yaml.safe_load(profile.read_text())
    assert written["ports"] == {"leader": "/dev/serial/by-id/usb-leader", "follower": str(arm)}
    assert written["calibration_dir"] == "/cal" and f"The follower arm is on {arm}" in "".join(output)


def test_find_port_refuses_when_nothing_or_two_ports_disappear(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-arm").symlink_to("/dev/null")
    result = subprocess.run(
        [sys.executable, "-m", "runner", "find-port", "--role", "follower", "--profile", str(tmp_path / "p.yaml")],
        input="\n", capture_output=True, text=True, timeout=60, env={**os.environ, "RUNNER_SERIAL_BY_ID": str(by_id)},
    )  # fmt: skip
    assert result.returncode == 1 and "no port disappeared" in result.stderr
    assert not (tmp_path / "p.yaml").exists()


def _videos(folder, sizes):
    import cv2
    import numpy as np

    folder.mkdir()
    paths = []
    for index, (width, height) in enumerate(sizes):
        path = folder / f"usb-Camera_{index}-video-index0.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
        for frame in range(60):
            writer.write(np.full((height, width, 3), (frame * 4 + index * 80) % 255, np.uint8))
        writer.release()
        paths.append(path)
    return paths


def test_find_cameras_measures_each_camera_keeps_a_snapshot_and_writes_roles(tmp_path, outputs_root):
    first, second = _videos(tmp_path / "by-id", [(160, 120), (64, 48)])
    profile = tmp_path / "local.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "runner", "find-cameras", "--profile", str(profile)], input="side\n\n",
        capture_output=True, text=True, timeout=120, env={**os.environ, "RUNNER_VIDEO_BY_ID": str(tmp_path / "by-id")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "160x120" in result.stdout and "64x48" in result.stdout and "fps measured" in result.stdout
    import yaml

    assert yaml.safe_load(profile.read_text())["cameras"] == {"side": str(first)}
    [run] = [p.parent for p in outputs_root.rglob("run.json")]
    record = json.loads((run / "run.json").read_text())
    assert [c["device"] for c in record["cameras"]] == [str(first), str(second)] and record["roles"] == {
        "side": str(first)
    }
    assert all((run / c["snapshot"]).stat().st_size > 100 for c in record["cameras"])


def test_doctor_opens_each_camera_at_its_mode_and_reports_the_measured_rate(tmp_path):
    [video] = _videos(tmp_path / "cams", [(160, 120)])
    common = [
        "~host",
        "cameras=side_only",
        f"+host.cameras.side={video}",
        "cameras.side.height=120",
        "cameras.side.fourcc=null",
    ]
    result = run_runner("doctor", "--json", *common, "cameras.side.width=160")
    row = next(c for c in json.loads(result.stdout) if c["name"] == "camera side")
    assert row["status"] == "ok" and "160x120" in row["detail"] and "fps measured" in row["detail"]
    result = run_runner("doctor", "--json", *common, "cameras.side.width=320")
    row = next(c for c in json.loads(result.stdout) if c["name"] == "camera side")
    assert row["status"] == "fail" and "asked 320x120" in row["detail"] and "got 160x120" in row["detail"]


def test_a_port_this_user_may_not_open_names_the_group_to_join_never_chmod(emulated):
    import grp

    from runner.hardware.checks import port_access

    if os.geteuid() != 0:
        pytest.skip("setting up a root:dialout port and checking it as another user needs root (CI runs as root)")
    os.chown(emulated.port, 0, grp.getgrnam("dialout").gr_gid)
    os.chmod(emulated.port, 0o660)  # as udev leaves a USB serial port: root:dialout, rw for the group
    os.setresuid(65534, 0, 0)  # the real user (whose access os.access checks) becomes nobody, not in dialout
    try:
        row = port_access("robot port", emulated.port)
    finally:
        os.setresuid(0, 0, 0)
    assert row.status == "fail" and "group dialout" in row.detail
    assert "sudo usermod -aG dialout $USER" in row.fix and "do not chmod 666" in row.fix


def test_doctor_passes_on_the_emulated_host_and_fails_a_camera_at_the_wrong_fps(tmp_path, monkeypatch):
    from runner.commands.emulate import serve

    monkeypatch.setenv("RUNNER_EMULATED_DIR", str(tmp_path))
    arms = ["host=emulated", "robot=so101_follower", "teleop=so101_leader", "cameras=wrist_side"]
    with serve(tmp_path):
        result = run_runner("doctor", "--json", *arms)
        rows = {c["name"]: c for c in json.loads(result.stdout)}
        hardware = {name: row for name, row in rows.items() if name.startswith(("robot ", "teleop ", "camera "))}
        assert len(hardware) == 8 and all(row["status"] == "ok" for row in hardware.values()), hardware
        side = rows["camera side"]["detail"]
        assert "640x480 emulated at" in side and "fps measured" in side
        assert rows["disk for the planned recording"]["status"] == "ok"
        # the side camera behind a busy hub: asked 30 fps, it delivers 12 new frames a second
        slow_side = "host.cameras.side=emulated:pattern@12"
        result = run_runner("doctor", "--json", *arms, slow_side)
    side = next(c for c in json.loads(result.stdout) if c["name"] == "camera side")
    assert side["status"] == "fail" and "at 30 fps" in side["detail"] and "would drop frames" in side["detail"]
    assert "MJPG" in side["fix"] and result.returncode == 1


def test_a_live_view_without_rerun_installed_is_refused_with_the_extra_to_install(outputs_root):
    import importlib.util

    from conftest import run_runner

    if importlib.util.find_spec("rerun") is not None:
        pytest.skip("rerun-sdk is installed here: the live view would open")
    result = run_runner("teleoperate", "display=true", "duration_s=1")
    assert result.returncode == 2 and "`display`" in result.stderr and "lerobot[viz]" in result.stderr
    assert not run_dirs(outputs_root)


# --- faults in the middle of an episode ---------------------------------------------------------------


def _faulty_recording(tmp_path, *overrides):
    """`runner record` on the emulated host (two arms on their buses, the leader moving as if held), with a
    side camera whose faults file is ``tmp_path/side.fault``.

    The emulated servos answer from a thread here and must do so within LeRobot's ~35 ms packet timeout, as
    real servos always do: the recorder runs at nice 5, below this process and above the parallel suite's
    workers (nice 10, scripts/test-suite), and these tests are marked `alone`."""
    from conftest import start_runner

    camera = f"host.cameras.side='emulated:pattern?faults={tmp_path / 'side.fault'}'"
    return start_runner("record", "host=emulated", "robot=so101_follower", "teleop=so101_leader", "cameras=side_only",
                        camera, "cameras.side.width=320", "cameras.side.height=240", "cameras.side.fps=10",
                        "episode.fps=10", "episode.episode_time_s=3", "episode.reset_time_s=0",
                        "episode.early_stop.keys=false", "episode.early_stop.idle_s=null", "episode.num_episodes=3",
                        *overrides, env={"RUNNER_EMULATED_DIR": str(tmp_path)},
                        preexec_fn=lambda: os.nice(5))  # fmt: skip


@pytest.mark.alone
@pytest.mark.parametrize(
    ("fault", "after_s", "message"),
    [
        (
            "unplug",
            0.2,
            "the side camera (opencv) stopped answering (EmulatedCamera(pattern) read thread is not running",
        ),
        ("unplug", 2.0, "the side camera (opencv) stopped answering"),
        ("hang", 0.2, "the side camera (opencv) stopped answering (EmulatedCamera(pattern) latest frame is too old"),
        ("servo", 0.2, "the follower arm (so101_follower) stopped answering: motor 3 (elbow_flex) does not answer"),
        ("servo", 2.0, "motor 3 (elbow_flex) does not answer"),
    ],
    ids=lambda value: str(value)[:12],
)
def test_a_device_failing_mid_episode_loses_only_that_episode(tmp_path, outputs_root, fault, after_s, message):
    from runner.commands.emulate import serve
    from runner.lerobot_adapter.datasets import load_dataset

    with serve(tmp_path) as buses:
        process = _faulty_recording(tmp_path)
        log = []
        for line in process.stderr:
            log.append(line)
            if "episode 2/3" in line and "started" in line:
                time.sleep(after_s)
                if fault == "servo":
                    buses["follower"].mute(3)
                else:
                    (tmp_path / "side.fault").write_text(fault)
        assert process.wait(timeout=120) == 1, "".join(log)[-3000:]
        assert all(servo.memory[40] == 0 for i, servo in buses["follower"].servos.items() if i != 3)  # torque off
    stderr = "".join(log)
    assert message in stderr and "during episode 2/3" in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert "That episode was discarded; the 1 kept before it are saved" in stderr and "resume=" in stderr
    [run] = run_dirs(outputs_root)
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    rows = (run / "episodes.csv").read_text().splitlines()[1:]
    assert ",device_lost," in rows[-1] and len(rows) == 2
    dataset = load_dataset(run / "dataset", "local/runner")
    assert dataset.num_episodes == 1 and len(dataset) == 30
    assert dataset[29]["observation.images.side"].shape == (3, 240, 320)  # the kept episode decodes to its end


@pytest.mark.alone
def test_a_frozen_camera_episode_is_discarded_and_a_dropping_one_is_flagged(tmp_path, outputs_root):
    from runner.commands.emulate import serve
    from runner.lerobot_adapter.datasets import load_dataset
    from runner.stages.record.attempts import REPEATED_FRAMES_WARN

    fault = tmp_path / "side.fault"
    with serve(tmp_path):
        process = _faulty_recording(tmp_path)
        log, attempts = [], 0
        for line in process.stderr:
            log.append(line)
            if "started" in line:
                attempts += 1
                fault.write_text({1: "freeze", 2: "drop"}.get(attempts, ""))
        assert process.wait(timeout=120) == 0, "".join(log)[-3000:]
    stderr = "".join(log)
    assert "discarded (side.frozen: camera_not_frozen" in stderr, stderr[-3000:]
    assert "the side camera repeated" in stderr and "check it with `runner doctor`" in stderr
    [run] = run_dirs(outputs_root)
    with open(run / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    frozen, dropping, clean = rows[0], rows[1], rows[2]
    assert frozen["kept"] == "False" and "camera_not_frozen" in frozen["validation"]
    assert dropping["kept"] == "True" and int(dropping["repeated_frames"].removeprefix("side=")) >= 5
    clean_repeats = int(clean["repeated_frames"].removeprefix("side="))
    assert clean["kept"] == "True" and clean_repeats <= REPEATED_FRAMES_WARN * int(clean["frames"])  # not flagged
    assert load_dataset(run / "dataset", "local/runner").num_episodes == 3


def _scene_image(path, shift_px: int = 0) -> None:
    """A static scene for an emulated camera (soft blobs on a gradient, 160x120), shifted right by ``shift_px``."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    scene = np.zeros((120, 200, 3), np.float32)
    scene += np.linspace(40, 160, 200, dtype=np.float32)[None, :, None]
    for _ in range(14):
        centre = (int(rng.integers(0, 200)), int(rng.integers(0, 120)))
        cv2.circle(scene, centre, int(rng.integers(6, 18)), rng.uniform(0, 255, 3).tolist(), -1)
    scene = cv2.GaussianBlur(scene, (0, 0), 1.2)
    cv2.imwrite(str(path), scene[:, 20 - shift_px : 180 - shift_px].astype(np.uint8))


@pytest.mark.alone  # emulated servos answer from this process's threads, within LeRobot's timeouts
def test_resuming_on_real_arms_refuses_a_moved_or_frozen_camera_and_continues_in_the_same_scene(tmp_path, outputs_root):
    from conftest import run_runner

    from runner.lerobot_adapter.datasets import load_dataset

    scene = tmp_path / "scene.png"
    _scene_image(scene)
    fault = tmp_path / "side.fault"
    side = ["cameras=side_only", f"+host.cameras.side='emulated:{scene}?faults={fault}'", "cameras.side.width=160",
            "cameras.side.height=120", "cameras.side.fps=10", "episode.episode_time_s=1"]  # fmt: skip
    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        _calibration(tmp_path / "follower.json")
        _calibration(tmp_path / "leader.json")
        arms = [a for a in _arms(follower, leader, tmp_path) if a != "cameras=none"]
        result = run_runner("record", *arms, *side, "episode.num_episodes=1", timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        [run] = run_dirs(outputs_root)
        before = sorted(str(p) for p in run.rglob("*"))

        _scene_image(scene, shift_px=5)  # the camera was pushed between the sessions
        resume = [f"resume={run.name}", "episode.num_episodes=2"]
        forgot = run_runner("record", *resume, timeout=300)  # the default robot is the simulated arm
        assert forgot.returncode == 2 and "`robot` was so101_follower in run" in forgot.stderr, forgot.stderr[-3000:]
        assert "robot=so101_follower teleop=so101_leader cameras=side_only" in forgot.stderr
        resume += ["robot=so101_follower", "teleop=so101_leader", "cameras=side_only", side[1]]
        refused = run_runner("record", *resume, timeout=300)
        assert refused.returncode == 2, refused.stderr[-3000:]
        # Estimated against a frame decoded from the recording's video: compression moves it a tenth of a pixel.
        moved = re.search(r"camera 'side' moved (\d+\.\d+) px", refused.stderr)
        assert "`scene_check`" in refused.stderr and moved and abs(float(moved[1]) - 5) < 0.5, refused.stderr[-3000:]
        assert f"runner check-scene {run.name}" in refused.stderr
        assert sorted(str(p) for p in run.rglob("*")) == before, "nothing may be written"
        assert all(servo.memory[40] == 0 for servo in follower.servos.values())  # the arm never moved

        _scene_image(scene)  # put back, but the camera's stream froze
        fault.write_text("freeze")
        frozen = run_runner("record", *resume, timeout=300)
        assert frozen.returncode == 2 and "camera 'side': delivers the same image frame after frame" in frozen.stderr
        fault.write_text("")
        result = run_runner("record", *resume, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        checked = json.loads((run / "run.json").read_text())["scene_check"]
        assert checked["mode"] == "refuse" and not checked["changed"]
        assert checked["cameras"]["side"]["shift_px"] < 0.5 and (run / checked["cameras"]["side"]["overlay"]).exists()
        assert load_dataset(run / "dataset", "local/default").num_episodes == 2

        _scene_image(scene, shift_px=5)  # moved again, and recorded anyway: episode 2 is of another scene
        more = [resume[0], "episode.num_episodes=3", *resume[-4:], "scene_check=warn"]
        result = run_runner("record", *more, timeout=300)
        assert result.returncode == 0 and "scene_check=warn" in result.stderr, result.stderr[-3000:]
        assert json.loads((run / "run.json").read_text())["scene_check"]["changed"]
    report = run_runner("report", "dataset", run.name, "--json")
    assert report.returncode == 0, report.stderr[-3000:]
    assert json.loads(report.stdout)["scene_drift"]["first_changed_episode"] == {"side": 2}
    curated = run_runner("dataset", "drop", run.name, "--scene-unlike", "0")
    assert curated.returncode == 0 and ": 2 episodes ->" in curated.stdout, curated.stderr[-3000:]
