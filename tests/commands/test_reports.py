"""`runner report`: pages made from runs, whose numbers match the runs they read, which they never change."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_dirs, run_runner

# The record run of the shared `trained` outputs root is the report's subject.
pytestmark = pytest.mark.xdist_group("trained")


def _digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_dataset_report_has_every_section_and_the_dataset_s_numbers(trained):
    [record_run] = [d for d in run_dirs(trained) if "-record-" in d.name]
    before = _digest(record_run)
    result = run_runner("report", "dataset", record_run.name[:22], "--json", env={"RUNNER_OUTPUTS": str(trained)})
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout)
    assert _digest(record_run) == before  # a report only reads

    from runner.lerobot_adapter.datasets import load_dataset

    dataset = load_dataset(record_run / "dataset", "local/sim_demo")
    frames = dataset.hf_dataset.with_format("numpy")
    states = np.stack(frames["observation.state"])
    assert numbers["episodes"] == dataset.num_episodes == 2 and numbers["frames"] == len(dataset)
    assert sum(g["episodes"] for g in numbers["by_scenario_operator"]) == 2
    assert numbers["by_scenario_operator"][0]["operator"] == "scripted"
    assert len(numbers["durations_s"]) == 2 and all(0 < d <= 2.0 for d in numbers["durations_s"])
    for index, (joint, coverage) in enumerate(numbers["coverage"].items()):
        assert coverage["min"] == pytest.approx(states[:, index].min(), abs=1e-3), joint
        assert coverage["max"] == pytest.approx(states[:, index].max(), abs=1e-3), joint
        assert coverage["limits"] and 0 < coverage["share"] <= 1.2  # the sim arm's range, saved by record
    assert set(numbers["jerk_rms"]) == {"0", "1"} and numbers["cameras"] == ["wrist", "side"]
    assert numbers["contact_sheet_episodes"] == [0, 1]
    drift = numbers["scene_drift"]
    assert {(row["episode"], row["camera"]) for row in drift["episodes"]} == {
        (e, c) for e in (0, 1) for c in ("wrist", "side")
    }
    for row in drift["episodes"]:
        if row["episode"] == 0:  # against itself
            assert row["shift_px"] < 0.05 and row["changed_fraction"] == 0 and not row["problems"]
    assert set(drift["first_changed_episode"]) == {"wrist", "side"} and drift["thresholds"]["max_shift"] == 0.01

    assert numbers["run"] == record_run.name
    report = Path(numbers["dir"])
    page = (report / "report.html").read_text()
    for heading in ("Episodes per scenario and operator", "Episode durations", "Discarded attempts",
                    "Joint-range coverage", "Action smoothness", "Contact sheet", "Scene drift"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page and f"## {heading}" in (report / "report.md").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == 5 and all((report / image).stat().st_size > 2000 for image in images)
    record = json.loads((report / "run.json").read_text())
    assert record["status"] == "succeeded" and record["parents"] == [record_run.name]


def test_a_report_of_a_run_that_is_not_there_names_what_to_give(outputs_root):
    result = run_runner("report", "dataset", "nope")
    assert result.returncode == 2 and "runner runs --stage record" in result.stderr
    assert not run_dirs(outputs_root)


@pytest.mark.slow
def test_operator_report_draws_the_policy_s_curve_beside_the_operators(trained):
    env = {"RUNNER_OUTPUTS": str(trained)}
    sweep = run_runner("eval", "experiment=sim_demo", "eval.n_episodes=1", "episode.episode_time_s=0.5",
                       "eval.videos=0", "hydra/launcher=basic", env=env, timeout=600)  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    [record_run] = [d for d in run_dirs(trained) if "-record-" in d.name]
    result = run_runner("report", "operators", record_run.name, "--policy", "latest-sweep", "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout)
    assert [p["step"] for p in numbers["policy"]] == [2, 4]
    scripted = numbers["operators"]["scripted"]
    assert scripted["practice"] == [0, 1] and scripted["fit"] is None  # two episodes: no curve to fit
    page = (Path(numbers["dir"]) / "report.html").read_text()
    assert "too few timed episodes" in page and "training step" in page


@pytest.mark.slow
def test_experiment_report_links_its_runs_and_every_image_is_there(trained):
    from runner.core import outputs

    before = {d: _digest(d) for d in run_dirs(trained)}
    result = run_runner("report", "experiment", "sim_demo", "--json", env={"RUNNER_OUTPUTS": str(trained)})
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout)
    assert {d: _digest(d) for d in before} == before  # nothing it read was changed
    runs = {r.id: r for r in outputs.list_runs(trained) if r.experiment == "sim_demo" and r.id != numbers["report"]}
    assert set(numbers["runs"]) == set(runs)
    [record] = [r for r in runs.values() if r.stage == "record"]
    [train] = [r for r in runs.values() if r.stage == "train"]
    assert numbers["record"] == [{"id": record.id, **record.record["episodes"]}]
    assert numbers["train"][0]["id"] == train.id and numbers["train"][0]["checkpoints"] == [2, 4]
    eval_sweeps = {s.id for s in outputs.list_sweeps(trained) if s.record.get("stage") == "eval"
                   and any(r.status == "succeeded" for r in s.runs())}  # fmt: skip
    assert {s["id"] for s in numbers["sweeps"]} == eval_sweeps
    report = Path(numbers["dir"])
    page = (report / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert images == ["lineage.png", "loss.png", "success.png"] and all(
        (report / i).stat().st_size > 2000 for i in images
    )
    assert record.id in page and train.id in page
    assert json.loads((report / "run.json").read_text())["report"] == {"kind": "experiment", "of": "sim_demo"}


def test_an_experiment_with_no_runs_names_the_ones_there_are(outputs_root):
    result = run_runner("report", "experiment", "nothing_here")
    assert result.returncode == 2 and "no run of experiment 'nothing_here'" in result.stderr


def test_viz_names_the_viewer_extra_or_the_run_it_needs(trained):
    import importlib.util

    env = {"RUNNER_OUTPUTS": str(trained)}
    wrong = run_runner("viz", "latest:train", env=env)
    assert wrong.returncode == 2 and "is a train run; give a record or eval run" in wrong.stderr
    if importlib.util.find_spec("rerun") is not None:
        pytest.skip("rerun-sdk is installed here: the viewer would open")
    viewer = run_runner("viz", "latest:record", "--episode", "1", env=env)
    assert viewer.returncode == 2 and "lerobot[viz]" in viewer.stderr


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless chromium: installed here when absent and possible (root with apt), else a skip."""
    import os
    import shutil
    import subprocess

    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        install = ["apt-get", "install", "-y", "-qq", "chromium"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, capture_output=True, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
            subprocess.run(install, capture_output=True, env=env)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium to render the report page: install it (Debian: apt install chromium)")
    return found


def _render(chromium: str, page: Path, tmp_path: Path) -> dict:
    """Open ``page`` in headless chromium; every <img> waited for, the broken ones listed."""
    import subprocess

    harness = tmp_path / "harness.html"
    harness.write_text(
        f"<!doctype html><html><body><iframe id='page' src='{page.as_uri()}' width='1200' height='3000'></iframe>"
        "<script>document.getElementById('page').onload = function () {"
        " const doc = this.contentDocument, images = Array.from(doc.images);"
        " const check = () => { if (!images.every(i => i.complete)) { setTimeout(check, 50); return; }"
        "  document.body.setAttribute('data-result', JSON.stringify({title: doc.title, images: images.length,"
        "   broken: images.filter(i => i.naturalWidth === 0).map(i => i.getAttribute('src'))})); };"
        " check(); };</script></body></html>"
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([chromium, *flags, "--virtual-time-budget=10000", "--dump-dom", harness.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    found = re.search(r'data-result="([^"]*)"', dom)
    assert found, f"the page did not finish loading: {dom[-2000:]}"
    import html

    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_the_report_page_renders_in_a_real_browser_with_every_image(trained, chromium, tmp_path):
    import shutil
    import subprocess

    from conftest import REPO

    result = run_runner("report", "experiment", "sim_demo", "--json", env={"RUNNER_OUTPUTS": str(trained)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = Path(json.loads(result.stdout)["dir"])
    rendered = _render(chromium, report / "report.html", tmp_path)
    assert rendered == {"title": "Experiment sim_demo", "images": 3, "broken": []}
    artefacts = REPO / "tests" / ".artifacts"
    artefacts.mkdir(exist_ok=True)
    shot = artefacts / "experiment_report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400", f"--screenshot={shot}"]
    subprocess.run([chromium, *flags, (report / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # kept as the test's artefact: what a reader sees

    damaged = tmp_path / "damaged"
    shutil.copytree(report, damaged)
    (damaged / "loss.png").unlink()  # the check can fail: a missing image is named
    assert _render(chromium, damaged / "report.html", tmp_path)["broken"] == ["loss.png"]
