"""`runner doctor`: one row per check, a fix for every problem, non-zero exit on a failed check."""

import json

from conftest import run_runner

from runner import doctor


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
