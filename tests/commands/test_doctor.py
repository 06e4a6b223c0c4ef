"""`runner doctor`: one row per check, a fix for every problem, non-zero exit on a failed check."""

import json

from conftest import run_runner

from runner.commands import doctor


def test_doctor_reports_every_check(tmp_path):
    result = run_runner("doctor", "--json", "--outputs", str(tmp_path / "out"))
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    expected = {
        "python",
        "lerobot",
        "torch",
        "hydra-core",
        "opencv (cv2)",
        "video (pyav)",
        "mujoco rendering",
        "free disk",
        "outputs root",
        "hugging face hub",
    }
    assert expected <= set(checks)
    assert checks["python"]["status"] == "ok"
    assert checks["opencv (cv2)"]["status"] == "ok", "exactly one OpenCV wheel must be installed"
    assert checks["hugging face hub"]["status"] == "ok", "tests run with HF_HUB_OFFLINE=1"
    assert all(c["fix"] for c in checks.values() if c["status"] != "ok")
    assert result.returncode == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)


def test_unwritable_outputs_root_fails_with_a_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_runner("doctor", "--json", "--outputs", str(blocker / "outputs"))
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["outputs root"]["status"] == "fail"
    assert "RUNNER_OUTPUTS" in checks["outputs root"]["fix"]
    assert result.returncode == 1


def test_two_opencv_wheels_fail_with_the_uninstall_command(monkeypatch):
    versions = {"opencv-python": "4.10.0", "opencv-python-headless": "4.13.0"}
    monkeypatch.setattr(doctor, "_version", versions.get)
    check = doctor.check_single_cv2()
    assert check.status == "fail"
    assert "pip uninstall -y opencv-python " in check.fix


def test_the_doctor_weighs_a_planned_recording_against_the_free_disk():
    from omegaconf import OmegaConf

    from runner.hardware.checks import recording_disk_check

    camera = {"width": 640, "height": 480}
    cfg = OmegaConf.create({
        "cameras": {"wrist": camera, "side": camera},
        "episode": {"fps": 30, "episode_time_s": 40, "num_episodes": None},
        "task": {"scenarios": [{"num_episodes": 10}] * 5},
    })  # fmt: skip
    # 2 x 640x480 px x 1200 frames x (1.5 B staged + 50 episodes x 1/8 B of video) = 5.7 GB, twice for margin
    short = recording_disk_check(cfg, free_bytes=10 * 10**9)
    assert short.status == "fail" and "50 episodes x 40 s at 30 fps" in short.detail and "5.71 GB" in short.detail
    assert recording_disk_check(cfg, free_bytes=12 * 10**9).status == "ok"
