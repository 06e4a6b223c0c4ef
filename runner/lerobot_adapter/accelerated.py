"""LeRobot's training under ``accelerate launch``: several data-parallel processes and/or mixed precision.

``lerobot_train.train`` is written for this: each rank builds its own ``Accelerator`` (gloo on CPU, NCCL on
GPUs), and only the main process logs metrics and writes checkpoints. The ranks run this module
(``python -m runner.lerobot_adapter.accelerated``); the main rank appends runner's hook events (metrics,
checkpoint written) to a JSON-lines file that the launching process follows and replays into its own hooks,
so the run directory, metrics.csv and run.json are written by one process only, as in a single-process run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lerobot.configs.train import TrainPipelineConfig

from runner.lerobot_adapter.hooked_training import TRAIN_CONFIG, Hooks, Processes, run_hooked

EVENTS_FILE = "events.jsonl"
LAUNCHER_LOG = "launcher.log"
_STOP_GRACE_S = 20.0
# Seen once in CI (2 CPU ranks, gloo): rank 0 logged LeRobot's "End of training" with every checkpoint whole,
# and the ranks never exited (LeRobot's closing wait_for_everyone / end_training). This long after both, the
# ranks are stopped and the training counts as done: nothing it saved is lost.
TEARDOWN_GRACE_S = 60.0
END_OF_TRAINING = "End of training"  # lerobot_train.train logs it once the last step and its checkpoint are done


def _free_port() -> int:
    # Two trainings on one machine must not share torch.distributed's default rendezvous port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _command(processes: Processes, worker_args: list[str]) -> list[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1",
               "--num_processes", str(processes.count), "--mixed_precision", processes.mixed_precision,
               "--dynamo_backend", "no"]  # fmt: skip
    if processes.count > 1:
        # accelerate's multi-process launcher (torch.distributed.run); on a machine without GPUs each rank's
        # Accelerator(cpu=True) joins a gloo group instead of NCCL.
        threads = max(1, (os.cpu_count() or 1) // processes.count)
        command += ["--multi_gpu", "--main_process_port", str(_free_port()),
                    "--num_cpu_threads_per_process", str(threads)]  # fmt: skip
    return [*command, "-m", __name__, *worker_args]


def launch(
    config: TrainPipelineConfig, resume_from: Path | None, save_steps: list[int], hooks: Hooks, processes: Processes
) -> None:
    """Run the ranks to completion, replaying the main rank's events into ``hooks``; stop them on any exit."""
    log_dir = processes.log_dir
    assert log_dir is not None, "an accelerate launch needs a log folder"
    log_dir.mkdir(parents=True, exist_ok=True)
    config_file = log_dir / TRAIN_CONFIG
    if resume_from is None:
        config._save_pretrained(log_dir)
    else:
        config_file = resume_from
    events = log_dir / EVENTS_FILE
    events.write_text("")
    worker_args = ["--config", str(config_file), "--steps", str(config.steps), "--events", str(events),
                   "--log-dir", str(log_dir), "--save-steps", ",".join(map(str, save_steps))]  # fmt: skip
    if resume_from is not None:
        worker_args.append("--resume")
    logging.getLogger("runner.train").info(
        "accelerate launch: %d process(es), mixed precision %s; rank logs in %s",
        processes.count, processes.mixed_precision, log_dir,
    )  # fmt: skip
    with open(log_dir / LAUNCHER_LOG, "ab") as launcher_log:
        process = subprocess.Popen(
            _command(processes, worker_args), stdout=launcher_log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        exited = _follow(events, process, hooks, config.steps, log_dir / "rank0.log")
    except BaseException:
        _stop(process)
        raise
    if not exited:
        logging.getLogger("runner.train").warning(
            "the training ranks had not exited %g s after the last checkpoint (a hang in torch.distributed's "
            "teardown); they are stopped, and every checkpoint is whole", TEARDOWN_GRACE_S,
        )  # fmt: skip
        _stop(process)
        return
    if process.returncode != 0:
        raise RuntimeError(f"accelerate launch exited with code {process.returncode}: {_failure_tail(log_dir)}")


def _follow(
    events: Path,
    process: subprocess.Popen,
    hooks: Hooks,
    last_step: int,
    main_log: Path,
    teardown_grace_s: float = TEARDOWN_GRACE_S,
) -> bool:
    """Replay the ranks' events into ``hooks`` until the launcher exits (True), or until it has not exited
    ``teardown_grace_s`` after the checkpoint of ``last_step`` was replayed and the main rank's log
    ``main_log`` says training ended (False)."""
    handlers: dict[str, Callable[[dict[str, Any]], None]] = {
        "metrics": lambda event: hooks.on_metrics(event["step"], event["values"]),
        "checkpoint": lambda event: hooks.on_checkpoint(event["step"], Path(event["path"]), event["save_s"]),
        "validation": lambda event: hooks.on_validation and hooks.on_validation(event["step"], event["loss"]),
        "parameters": lambda event: hooks.on_parameters and hooks.on_parameters(event["which"], event["count"]),
    }
    pending = ""
    trained_at = None
    saved_last = False
    with open(events) as stream:
        while True:
            finished = process.poll() is not None  # read after this: nothing the ranks wrote is missed
            pending += stream.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                event = json.loads(line)
                handlers[event["kind"]](event)
                saved_last = saved_last or (event["kind"] == "checkpoint" and event["step"] == last_step)
            if finished:
                return True
            if trained_at is None and saved_last and _says_training_ended(main_log):
                trained_at = time.monotonic()
            if trained_at is not None and time.monotonic() - trained_at > teardown_grace_s:
                return False
            time.sleep(0.2)


def _says_training_ended(main_log: Path) -> bool:
    return main_log.exists() and END_OF_TRAINING in main_log.read_text(errors="replace")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the launcher and its ranks (their own process group), SIGKILL after a grace period."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _failure_tail(log_dir: Path) -> str:
    """The exception of the first rank log that holds a traceback (else the launcher's last line)."""
    for path in [*sorted(log_dir.glob("rank*.log")), log_dir / LAUNCHER_LOG]:
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        if text and ("Traceback" in text or path.name == LAUNCHER_LOG):
            return f"{text.splitlines()[-1].strip()} (see {path})"
    return f"see {log_dir}"


# --- one rank ----------------------------------------------------------------------------------------


def _rank_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--save-steps", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    handler = logging.FileHandler(args.log_dir / f"rank{rank}.log")
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-7s rank{rank} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)

    def emit(event: dict[str, Any]) -> None:
        with open(args.events, "a") as stream:  # whole lines, appended by the main rank only
            stream.write(json.dumps(event) + "\n")

    hooks = Hooks(
        on_metrics=lambda step, values: emit({"kind": "metrics", "step": step, "values": values}),
        on_checkpoint=lambda step, path, save_s: emit(
            {"kind": "checkpoint", "step": step, "path": str(path), "save_s": save_s}
        ),
        on_validation=lambda step, loss: emit({"kind": "validation", "step": step, "loss": loss}),
        on_parameters=lambda which, count: emit({"kind": "parameters", "which": which, "count": count}),
    )
    config = TrainPipelineConfig.from_pretrained(args.config)
    config.steps = args.steps
    config.resume = args.resume
    try:
        run_hooked(config, args.config if args.resume else None, [int(s) for s in args.save_steps.split(",")], hooks)
    except BaseException:
        logging.exception("rank %d failed", rank)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1:]))
