"""Where a recorded frame's time goes after rendering, per video codec, and what training pays to decode it.

Each candidate (every codec LeRobot 0.6 accepts that this PyAV build can encode, with streaming encoding off
and on) records the same sim_demo episodes through runner's own code path: the record stage's episode loop
(`record_episode`, realtime off) into `DatasetRecorder`, whose `keep_episode` saves, finalizes and reopens
the dataset after every episode. Each recording runs in a process of its own, so that none inherits another's
warm caches or threads. Reported per candidate:

1. Recording: ms per frame in all and after rendering (everything but the sim's observe/act), and where the
   per-episode save goes: PNG staging (waiting for the image writer), save_episode (video encoding, parquet,
   metadata; with streaming, what the encoder thread has left to do), finalize, the save transaction
   (SavedState) and the reopen (`LeRobotDataset.resume`). A reopened dataset starts new video files, so no
   episode is appended to an earlier one's.
2. The videos: bytes per frame, quality (PSNR of every decoded frame against the frame recorded) and frames
   the videos lack against the parquet (streaming encoding drops frames when its encoder falls behind).
3. Decoding as training sees it: samples/s of `LeRobotDataset(...)[i]` at random indices (both cameras of a
   frame, pyav as runner trains with), in rounds that interleave the candidates, the first access excluded.
4. Ratios against LeRobot's default: libsvtav1, streaming off.

Figures only, never asserted. Usage:
  .venv/bin/python benchmarks/bench_codec.py [--episodes 3] [--repeats 1] [--size 128x96] [--codecs h264,hevc]
"""

import argparse
import inspect
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = ("libsvtav1", "h264", "hevc", "libaom-av1")
DEFAULT = ("libsvtav1", False)


def available_codecs(names: tuple[str, ...]) -> list[str]:
    from lerobot.configs.video import RGBEncoderConfig

    found = []
    for name in names:
        try:
            RGBEncoderConfig(vcodec=name)
            found.append(name)
        except ValueError:
            pass
    return found


class Timers:
    """Seconds spent in wrapped functions, by label; the outermost call of a label counts, not nested ones."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth: dict[str, int] = defaultdict(int)

    def wrap(self, owner, name: str, label: str) -> None:
        function = getattr(owner, name)

        def timed(*args, **kwargs):
            self._depth[label] += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth[label] -= 1
                if self._depth[label] == 0:
                    self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)


def sim_demo_config(overrides: list[str], size: str):
    """sim_demo's composed config with these overrides, every camera ``size`` (WxH)."""
    sys.path.insert(0, str(REPO))
    from hydra import compose, initialize_config_dir

    from runner.core.conf import CONF_DIR, register_resolvers
    from runner.schema import register_schemas

    register_schemas()
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=sim_demo", *overrides])
    width, height = (int(n) for n in size.split("x"))
    for camera in cfg.cameras.values():
        camera.width, camera.height = width, height
    return cfg


def episode_loop(robot, teleop, recorder, planned, cfg):
    """The record stage's own episode loop, called with the arguments its signature has today."""
    from runner.episodes.validation import FrameLog
    from runner.stages.record.loop import Display, record_episode

    sizes = {role: (c.height, c.width) for role, c in cfg.cameras.items()}
    log = FrameLog(sizes, list(robot.action_features), cfg.episode.early_stop.idle_threshold_deg)
    arguments = {
        "robot": robot, "teleop": teleop, "recorder": recorder, "frames_log": log, "ticks": [], "planned": planned,
        "cfg": cfg, "keys": None, "display": Display(False), "header": "bench",
    }  # fmt: skip
    parameters = inspect.signature(record_episode).parameters
    return record_episode(**{k: v for k, v in arguments.items() if k in parameters})


def pace_one(vcodec: str, streaming: bool, seconds: float, size: str, work: Path) -> dict:
    """One realtime episode at 30 fps: the loop's period (when each observation is taken) and the save after it."""
    cfg = sim_demo_config(["episode.fps=30", "episode.realtime=true", f"episode.episode_time_s={seconds}",
                           "episode.early_stop.on_success=false", "episode.early_stop.idle_s=null"], size)  # fmt: skip
    import runner.sim  # noqa: F401  (MuJoCo's GL backend first)
    from runner.lerobot_adapter import dataset_recorder, devices
    from runner.sim.world import Variation
    from runner.stages.record import record_plan

    robot = devices.make_robot(devices.robot_config(cfg))
    teleop = devices.make_teleop(devices.teleop_config(cfg))
    robot.connect()
    teleop.connect()
    ticks: list[float] = []
    observe = robot.get_observation
    robot.get_observation = lambda: (ticks.append(time.perf_counter()), observe())[1]
    recorder = dataset_recorder.DatasetRecorder(
        work / "dataset", "local/pace", 30, robot, True, resume=False, vcodec=vcodec, streaming_encoding=streaming
    )
    planned = record_plan(cfg)[0]
    robot.start_episode(planned.seed, Variation(**planned.variation))
    teleop.start_episode(planned.seed, practice=0)
    try:
        episode_loop(robot, teleop, recorder, planned, cfg)
        start = time.perf_counter()
        recorder.keep_episode()
        save_s = time.perf_counter() - start
    finally:
        recorder.close()  # stops LeRobot's image writer threads, which would keep the process alive
        robot.disconnect()
    periods = np.diff(ticks) * 1000
    return {
        "frames": len(ticks),
        "p50_ms": float(np.percentile(periods, 50)),
        "p99_ms": float(np.percentile(periods, 99)),
        "late": int((periods > 1.5 * 1000 / 30).sum()),
        "save_s": save_s,
    }


def record_one(vcodec: str, streaming: bool, episodes: int, size: str, work: Path) -> dict:
    """Record with one codec in this process and measure it; a dict of figures (the dataset stays in ``work``)."""
    cfg = sim_demo_config(["episode.realtime=false", f"episode.num_episodes={episodes}"], size)
    from lerobot.datasets import LeRobotDataset, dataset_writer

    import runner.sim  # noqa: F401  (MuJoCo's GL backend first)
    from runner.lerobot_adapter import dataset_recorder, datasets, devices
    from runner.sim.world import Variation
    from runner.stages.record import record_plan

    timers = Timers()
    timers.wrap(dataset_writer.DatasetWriter, "_wait_image_writer", "png staging")
    timers.wrap(dataset_recorder.DatasetRecorder, "_wait_for_frames", "png staging")
    timers.wrap(dataset_writer.DatasetWriter, "save_episode", "save_episode")
    timers.wrap(LeRobotDataset, "finalize", "finalize")
    timers.wrap(dataset_recorder.SavedState, "take", "transaction")
    timers.wrap(dataset_recorder.SavedState, "drop", "transaction")
    timers.wrap(LeRobotDataset, "resume", "reopen")
    timers.wrap(dataset_recorder.DatasetRecorder, "add_frame", "add_frame")

    robot = devices.make_robot(devices.robot_config(cfg))
    teleop = devices.make_teleop(devices.teleop_config(cfg))
    robot.connect()
    teleop.connect()
    timers.wrap(robot, "get_observation", "sim")
    timers.wrap(robot, "send_action", "sim")
    timers.wrap(teleop, "get_action", "sim")
    recorded: dict[str, list[np.ndarray]] = defaultdict(list)  # camera role -> every frame kept, in order
    episode_frames: dict[str, list[np.ndarray]] = defaultdict(list)
    observe = robot.get_observation

    def observe_and_keep():
        observation = observe()
        for role in cfg.cameras:
            episode_frames[role].append(observation[role].copy())
        return observation

    robot.get_observation = observe_and_keep
    root = work / "dataset"
    start = time.perf_counter()
    recorder = dataset_recorder.DatasetRecorder(
        root, "local/codec", cfg.episode.fps, robot, True, resume=False, vcodec=vcodec, streaming_encoding=streaming
    )
    frames = 0
    try:
        for planned in record_plan(cfg):
            robot.start_episode(planned.seed, Variation(**planned.variation))
            teleop.start_episode(planned.seed, practice=0)
            episode_frames.clear()
            result = episode_loop(robot, teleop, recorder, planned, cfg)
            recorder.keep_episode()
            frames += result.frames
            for role, images in episode_frames.items():
                recorded[role].extend(images[: result.frames])
    finally:
        recorder.close()
        robot.disconnect()
    seconds = time.perf_counter() - start

    videos = sorted((root / "videos").rglob("*.mp4"))
    info = json.loads((root / "meta" / "info.json").read_text())
    codecs = sorted({f["info"]["video.codec"] for f in info["features"].values() if f["dtype"] == "video"})

    dataset = LeRobotDataset("local/codec", root=root, video_backend=datasets.VIDEO_BACKEND)
    keys = dataset.meta.camera_keys
    errors = []
    for index in range(len(dataset)):  # every frame once, for quality
        item = dataset[index]
        for key in keys:
            role = key.removeprefix("observation.images.")
            decoded = item[key].numpy().transpose(1, 2, 0) * 255
            errors.append(np.mean((decoded - recorded[role][index].astype(np.float32)) ** 2))
    psnr = 10 * math.log10(255**2 / max(float(np.mean(errors)), 1e-12))
    video_frames = 0
    for video in videos:
        with av.open(str(video)) as container:
            video_frames += sum(1 for _ in container.demux(container.streams.video[0]) if _.size)
    return {
        "vcodec": vcodec,
        "streaming": streaming,
        "root": str(root),
        "info_codec": ",".join(codecs),
        "frames": frames,
        "missing": frames * len(keys) - video_frames,  # frames the parquet has and a video lacks
        "seconds": seconds,
        "timers": dict(timers.seconds),
        "bytes": sum(v.stat().st_size for v in videos),
        "psnr": psnr,
    }


def decode_rates(roots: list[str], samples: int, rounds: int) -> list[float]:
    """Samples/s of LeRobotDataset(...)[i] at random i for each dataset, rounds interleaved, median of rounds."""
    sys.path.insert(0, str(REPO))
    from lerobot.datasets import LeRobotDataset

    from runner.lerobot_adapter.datasets import VIDEO_BACKEND

    datasets = [LeRobotDataset("local/codec", root=root, video_backend=VIDEO_BACKEND) for root in roots]
    for dataset in datasets:
        dataset[0]  # the first access opens the parquet files: not what a training step pays
    rates: list[list[float]] = [[] for _ in datasets]
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for dataset, rate in zip(datasets, rates, strict=True):
            order = rng.integers(0, len(dataset), samples)
            start = time.perf_counter()
            for index in order:
                dataset[int(index)]
            rate.append(samples / (time.perf_counter() - start))
    return [statistics.median(rate) for rate in rates]


def in_subprocess(*arguments: str) -> dict | list:
    command = [sys.executable, __file__, "--child", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_row(runs: list[dict]) -> dict:
    """One candidate's figures, the median of its repeats."""
    row = dict(runs[0])
    row["seconds"] = statistics.median(r["seconds"] for r in runs)
    labels = {label for r in runs for label in r["timers"]}
    row["timers"] = {label: statistics.median(r["timers"].get(label, 0) for r in runs) for label in labels}
    row["after_s"] = statistics.median(r["seconds"] - r["timers"].get("sim", 0) for r in runs)
    row["missing"] = max(r["missing"] for r in runs)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="recordings per candidate, interleaved; medians")
    parser.add_argument("--samples", type=int, default=100, help="random samples per decode round")
    parser.add_argument("--rounds", type=int, default=5, help="decode rounds, candidates interleaved; median")
    parser.add_argument("--size", default="128x96", help="camera width x height (sim_demo's: 128x96)")
    parser.add_argument("--codecs", default=",".join(CANDIDATES[:3]), help=f"from {', '.join(CANDIDATES)}")
    parser.add_argument("--pace-seconds", type=float, default=5.0, help="the realtime episode; 0 skips it")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "record":
            vcodec, streaming, episodes, size, work = args.child[1:]
            print(json.dumps(record_one(vcodec, streaming == "1", int(episodes), size, Path(work))))
        elif args.child[0] == "pace":
            vcodec, streaming, seconds, size, work = args.child[1:]
            print(json.dumps(pace_one(vcodec, streaming == "1", float(seconds), size, Path(work))))
        else:
            samples, rounds, *roots = args.child[1:]
            print(json.dumps(decode_rates(roots, int(samples), int(rounds))))
        return
    candidates = [(c, s) for c in available_codecs(tuple(args.codecs.split(","))) for s in (False, True)]
    runs: dict[tuple[str, bool], list[dict]] = defaultdict(list)
    failed: dict[tuple[str, bool], str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for index, (vcodec, streaming) in enumerate(candidates):
                work = Path(tmp) / f"{index}-{repeat}"
                result = in_subprocess("record", vcodec, str(int(streaming)), str(args.episodes), args.size, str(work))
                if "error" in result:
                    failed[(vcodec, streaming)] = result["error"]
                else:
                    runs[(vcodec, streaming)].append(result)
        rows = [median_row(runs[c]) for c in candidates if runs[c]]
        rates = in_subprocess("decode", str(args.samples), str(args.rounds), *(r["root"] for r in rows))
        paces = {}
        if args.pace_seconds > 0:
            for index, (vcodec, streaming) in enumerate(candidates):
                work = Path(tmp) / f"pace-{index}"
                paces[(vcodec, streaming)] = in_subprocess(
                    "pace", vcodec, str(int(streaming)), str(args.pace_seconds), args.size, str(work)
                )
    if isinstance(rates, dict):
        raise SystemExit(f"decoding failed: {rates['error']}")
    for row, rate in zip(rows, rates, strict=True):
        row["decode"] = rate
    print(f"video codecs through runner record: sim_demo, {args.episodes} episodes, realtime off, 2 cameras "
          f"{args.size}, medians of {args.repeats} recording(s) and of {args.rounds} decode rounds")  # fmt: skip
    print("  ms/frame: all = the recording's wall time / frames; after = all minus the sim (observe, act)")
    print("  ms/episode: png = waiting for staged PNGs · save = save_episode (encoding, parquet, metadata)")
    print("    · fin = finalize · txn = save transaction (SavedState) · reopen = LeRobotDataset.resume")
    print("  miss = frames in the parquet that the video lacks (streaming drops frames when its encoder lags)")
    print("  dec/s: LeRobotDataset(...)[i] at random i with pyav, samples/s (a sample decodes both cameras)")
    print("  x: ratios against LeRobot's default, libsvtav1 with streaming off: after ms/frame, size, dec/s")
    print(f"  {'codec':<11}{'stream':<7}{'info.json':<10}{'frames':>6}{'all':>7}{'after':>7}{'png':>6}{'save':>7}"
          f"{'fin':>6}{'txn':>6}{'reopen':>7}{'miss':>5}{'B/frame':>8}{'PSNR':>6}{'dec/s':>7}"
          f"{'after x':>8}{'size x':>7}{'dec x':>7}")  # fmt: skip
    base = next((r for r in rows if (r["vcodec"], r["streaming"]) == DEFAULT), None)
    for row in rows:
        t, frames, eps = row["timers"], row["frames"], args.episodes
        size = row["bytes"] / frames

        def per_episode(label: str, t=t, eps=eps) -> float:
            return 1000 * t.get(label, 0) / eps

        ratios = ""
        if base is not None:
            after_x = (row["after_s"] / frames) / (base["after_s"] / base["frames"])
            size_x = size / (base["bytes"] / base["frames"])
            ratios = f"{after_x:8.2f}{size_x:7.2f}{row['decode'] / base['decode']:7.2f}"
        print(f"  {row['vcodec']:<11}{'on' if row['streaming'] else 'off':<7}{row['info_codec']:<10}{frames:>6}"
              f"{1000 * row['seconds'] / frames:7.2f}{1000 * row['after_s'] / frames:7.2f}"
              f"{per_episode('png staging'):6.0f}{per_episode('save_episode'):7.0f}{per_episode('finalize'):6.0f}"
              f"{per_episode('transaction'):6.0f}{per_episode('reopen'):7.0f}{row['missing']:5d}{size:8.0f}"
              f"{row['psnr']:6.1f}{row['decode']:7.1f}{ratios}")  # fmt: skip
    for (vcodec, streaming), error in failed.items():
        print(f"  {vcodec:<11}{'on' if streaming else 'off':<7}failed: {error}")
    if paces:
        print(f"realtime at 30 fps (period 33.3 ms), one {args.pace_seconds:g} s episode, 2 cameras {args.size}: the")
        print("  loop's period p50/p99, frames later than 1.5 periods, and the save the operator waits for after it")
        for (vcodec, streaming), pace in paces.items():
            label = f"  {vcodec:<11}{'on' if streaming else 'off':<7}"
            if "error" in pace:
                print(f"{label}failed: {pace['error']}")
                continue
            print(f"{label}p50 {pace['p50_ms']:5.1f} ms · p99 {pace['p99_ms']:5.1f} ms · late {pace['late']:3d} of "
                  f"{pace['frames']} · save {pace['save_s']:5.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
