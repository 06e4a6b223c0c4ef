"""A disk that fills up or is read-only, for real: each test mounts a small tmpfs of its own as the outputs root
(root only; skipped elsewhere), and fills it with a preallocated file while a stage writes."""

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import TINY_ACT, run_dirs, run_runner, start_runner, wait_until
from omegaconf import OmegaConf

RECORD = ["record", "experiment=sim_demo", "episode.realtime=false"]
TRAIN = ["train", "experiment=sim_demo", "train.num_workers=0", "train.batch_size=2", "train.log_freq=2",
         "train.steps=4", "train.save_freq=2", *TINY_ACT]  # fmt: skip
MB = 1_000_000


class Disk:
    """A tmpfs mounted at ``path``; ``fill(leave)`` preallocates a file leaving ``leave`` bytes free."""

    def __init__(self, path: Path, size_mb: int, options: str = "") -> None:
        self.path, self.filler = path, path / "filler"
        path.mkdir(parents=True)
        mount = ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m{options}", "tmpfs", str(path)]
        result = subprocess.run(mount, capture_output=True, text=True)
        if result.returncode != 0:
            reason = f"cannot mount a tmpfs here ({result.stderr.strip()}): these tests need root and CAP_SYS_ADMIN"
            if os.environ.get("CI"):  # a guarantee CI promises is not skipped there
                pytest.fail(reason)
            pytest.skip(reason)

    @property
    def free(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave: int) -> None:
        """Grow the filler until at most ``leave`` bytes are free. A stage may be writing meanwhile, so the free
        space is read again before each chunk, and a chunk the disk no longer has room for is halved."""
        chunk = 8 * MB
        with open(self.filler, "ab") as f:
            while (want := self.free - leave) > 0:
                try:
                    os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, min(chunk, want))
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    if chunk <= 4096:
                        return  # the disk is full: nothing is left to take
                    chunk //= 2

    def empty(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    disks = []

    def make(size_mb: int, options: str = "") -> Disk:
        disks.append(Disk(tmp_path / f"disk{len(disks)}", size_mb, options))
        return disks[-1]

    yield make
    for disk in disks:
        disk.unmount()


def _runs(root: Path, stage: str) -> list[Path]:
    return [d for d in run_dirs(root) if json.loads((d / "run.json").read_text())["stage"] == stage]


def _episodes_decode(run: Path, count: int) -> None:
    from runner.lerobot_adapter.datasets import load_dataset

    dataset = load_dataset(run / "dataset", "local/sim_demo")
    assert dataset.num_episodes == count
    for episode in range(count):
        last = dataset.meta.episodes["dataset_to_index"][episode] - 1
        assert dataset[last]["observation.images.side"].shape[0] == 3  # the video frame decodes


def test_a_read_only_or_too_small_disk_is_refused_before_any_run(small_disk):
    readonly = small_disk(8, ",ro")
    result = run_runner(*RECORD, env={"RUNNER_OUTPUTS": str(readonly.path / "outputs")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "`paths.outputs`" in result.stderr and "read-only filesystem" in result.stderr
    assert "RUNNER_OUTPUTS" in result.stderr  # the fix

    tiny = small_disk(4)  # one sim_demo episode may stage ~16 MB of frames
    result = run_runner(*RECORD, env={"RUNNER_OUTPUTS": str(tiny.path / "outputs")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "`paths.outputs`" in result.stderr and "MB free" in result.stderr and "one episode" in result.stderr
    assert not (tiny.path / "outputs").exists()


def test_record_stops_before_an_episode_the_disk_cannot_hold_and_resumes_once_freed(small_disk):
    from runner.stages.record import episode_bytes

    disk = small_disk(64)
    root = disk.path / "outputs"
    env = {"RUNNER_OUTPUTS": str(root)}
    first = run_runner(*RECORD, "episode.num_episodes=1", env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = _runs(root, "record")
    need = episode_bytes(OmegaConf.load(run / ".hydra" / "config.yaml"))
    disk.fill(leave=need + 50_000)  # room for episode 2 (checked before it starts), none for episode 3 after it
    result = run_runner("record", f"resume={run.name}", "episode.num_episodes=3", env=env, timeout=600)
    assert result.returncode == 1
    assert (
        "stopped before episode 3/3" in result.stderr and "The 2 episode(s) kept before it are saved" in result.stderr
    )
    assert f"runner record resume={run.name}" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    _episodes_decode(run, 2)
    disk.empty()
    resumed = run_runner("record", f"resume={run.name}", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _episodes_decode(run, 3)


def test_a_disk_filling_mid_episode_discards_only_that_episode(small_disk):
    disk = small_disk(64)
    root = disk.path / "outputs"
    env = {"RUNNER_OUTPUTS": str(root)}
    process = start_runner(*RECORD, "episode.num_episodes=3", env=env)
    log = []
    for line in process.stderr:
        log.append(line)
        if "episode 2/3" in line and "started" in line:
            [run] = _runs(root, "record")
            wait_until(lambda: any(v.stat().st_size for v in (run / "dataset").glob("tmp*/*.mp4")),  # noqa: B023
                       "episode 2's videos being written", process=process)  # fmt: skip
            disk.fill(leave=0)
    assert process.wait(timeout=300) == 1
    stderr = "".join(log)
    assert "filled up during episode 2/3" in stderr and "No space left on device" in stderr
    assert "that episode was discarded" in stderr and "The 1 episode(s) kept before it are saved" in stderr
    assert "Traceback" not in stderr
    [run] = _runs(root, "record")
    record = json.loads((run / "run.json").read_text())  # whole JSON, written once the episode's frames were freed
    assert record["status"] == "failed" and record["error"]["type"] == "DiskFull"
    rows = (run / "episodes.csv").read_text().splitlines()
    assert ",disk_full," in rows[-1] and len(rows) == 3
    assert not (run / "dataset" / "images").exists() and not (run / ".dataset.saving").exists()
    _episodes_decode(run, 1)
    disk.empty()
    resumed = run_runner("record", f"resume={run.name}", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _episodes_decode(run, 3)


def _recorded(disk: Disk) -> dict:
    env = {"RUNNER_OUTPUTS": str(disk.path / "outputs")}
    result = run_runner(*RECORD, "episode.num_episodes=1", "episode.episode_time_s=2", env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return env


def test_train_stops_at_a_whole_checkpoint_when_the_next_would_not_fit(small_disk):
    from runner.lerobot_adapter.checkpoints import checkpoints
    from runner.lerobot_adapter.evaluation import load_policy

    disk = small_disk(512)
    env = _recorded(disk)
    disk.fill(leave=200 * MB)  # one tiny-ACT checkpoint is ~135 MB: room for the first, not the second
    result = run_runner(*TRAIN, env=env, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "stopped after checkpoint 2 of 4 steps" in result.stderr and "checkpoints [2] are whole" in result.stderr
    [run] = _runs(disk.path / "outputs", "train")
    assert f"runner train resume={run.name}" in result.stderr and "train.keep_checkpoints" in result.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    output = run / "train"
    assert list(checkpoints(output)) == [2] and (output / "checkpoints" / "last").resolve().name == "000002"
    load_policy(checkpoints(output)[2] / "pretrained_model", "cpu")
    disk.empty()
    resumed = run_runner("train", f"resume={run.name}", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert list(checkpoints(output)) == [2, 4]


def test_a_disk_filling_during_a_checkpoint_save_leaves_no_half_checkpoint(small_disk):
    disk = small_disk(512)
    env = _recorded(disk)
    disk.fill(leave=40 * MB)  # LeRobot's first save runs out of space half-way
    result = run_runner(*TRAIN, env=env, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "filled up during training (No space left on device)" in result.stderr
    assert "no checkpoint was saved yet" in result.stderr and "train again" in result.stderr
    [run] = _runs(disk.path / "outputs", "train")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == "DiskFull"
    folder = run / "train" / "checkpoints"
    assert not folder.exists() or not any(folder.iterdir())  # the half-written save is gone
    assert "removed checkpoint 2: its save did not finish" in (run / "run.log").read_text()


def test_dropping_unfinished_checkpoints_points_last_at_the_newest_whole_one(tmp_path):
    from runner.lerobot_adapter.checkpoints import LINEAGE, checkpoints, drop_incomplete, last_step

    folder = tmp_path / "checkpoints"
    for step, whole in ((2, True), (4, True), (6, False)):
        pretrained = folder / f"{step:06d}" / "pretrained_model"
        pretrained.mkdir(parents=True)
        (pretrained / "model.safetensors").write_bytes(b"weights")
        if whole:
            (pretrained / LINEAGE).write_text("{}")
    (folder / "last").symlink_to("000006")  # LeRobot moved the link before runner could mark the save whole
    assert drop_incomplete(tmp_path) == [6]
    assert list(checkpoints(tmp_path)) == [2, 4] and last_step(tmp_path) == 4
    assert drop_incomplete(tmp_path) == [] and last_step(tmp_path) == 4


@pytest.mark.xdist_group("trained")
def test_an_episode_save_cut_short_is_rolled_back_to_the_episodes_before_it(trained, tmp_path):
    import shutil

    from runner.lerobot_adapter.dataset_recorder import SavedState, roll_back_interrupted_save
    from runner.lerobot_adapter.datasets import load_dataset

    [record] = _runs(trained, "record")
    root = tmp_path / "dataset"
    shutil.copytree(record / "dataset", root)

    def contents() -> dict:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    before = contents()
    SavedState(root).take()
    # What a save killed half-way leaves: new files, metadata rewritten in place and cut short.
    (root / "data" / "chunk-000" / "file-009.parquet").write_bytes(b"PAR1 half a table")
    (root / "videos" / "observation.images.side" / "chunk-000" / "file-009.mp4").write_bytes(bytes(100))
    info = root / "meta" / "info.json"
    info.write_text(info.read_text()[:100])
    assert roll_back_interrupted_save(root)  # what `record resume=` does first
    assert contents() == before
    assert load_dataset(root, "local/sim_demo").num_episodes == 2
    assert not roll_back_interrupted_save(root) and not (tmp_path / ".dataset.saving").exists()
