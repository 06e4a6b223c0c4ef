"""A training's progress: metrics.csv, the loss plot, a progress bar on a terminal, and log lines."""

from __future__ import annotations

import csv
import logging
import math
import sys
import time

from runner.core import layout, outputs
from runner.core.context import Run

log = logging.getLogger("runner.train")

COLUMNS = ["step", "loss", "lr", "grad_norm", "update_s", "steps_per_s", "val_loss"]


class TrainProgress:
    """metrics.csv, the loss plot, a progress bar on a terminal, and log lines."""

    def __init__(self, run: Run, total_steps: int, start_step: int) -> None:
        self.run, self.total = run, total_steps
        self.path = run.dir / layout.TRAIN_METRICS_CSV
        self.rows: list[dict] = []
        if self.path.exists():
            with open(self.path) as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        # step -> loss on the held-out episodes (train.val_split)
        self.val_losses = {int(r["step"]): float(r["val_loss"]) for r in self.rows if r.get("val_loss")}
        self.started = time.monotonic()
        self.start_step = start_step
        self.bar = None
        if sys.stdout.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
            )  # fmt: skip
            self.task = self.bar.add_task("train", total=total_steps, completed=start_step, status="")
            self.bar.start()

    def metrics(self, step: int, values: dict[str, float]) -> None:
        rate = (step - self.start_step) / max(time.monotonic() - self.started, 1e-9)
        row = {"step": step, "loss": values.get("loss"), "lr": values.get("lr"), "grad_norm": values.get("grad_norm"),
               "update_s": values.get("update_s"), "steps_per_s": round(rate, 3)}  # fmt: skip
        self.rows.append(row)
        self._write()
        eta = (self.total - step) / rate if rate > 0 else math.inf
        status = f"loss {row['loss']:.4f} · {rate:.2f} steps/s"
        if self.bar is not None:
            self.bar.update(self.task, completed=step, status=status)
        log.info("step %d/%d · %s · eta %s", step, self.total, status, "?" if math.isinf(eta) else f"{eta:.0f} s")

    def _write(self) -> None:
        self.path.parent.mkdir(exist_ok=True)
        outputs.write_csv_atomic(self.path, COLUMNS, self.rows)

    def validation(self, step: int, loss: float) -> None:
        """The held-out loss at ``step``: on that step's row (LeRobot logs the training metrics first)."""
        self.val_losses[step] = loss
        row = next((r for r in reversed(self.rows) if int(r["step"]) == step), None)
        if row is None:
            row = {"step": step}
            self.rows.append(row)
        row["val_loss"] = loss
        self._write()
        log.info("step %d/%d · validation loss %.4f", step, self.total, loss)

    def plot(self, checkpoints: list[int]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not self.rows:
            return
        trained = [r for r in self.rows if r.get("loss") not in (None, "")]
        steps = [int(r["step"]) for r in trained]
        losses = [float(r["loss"]) for r in trained]
        figure, axis = plt.subplots(figsize=(6, 3.5), dpi=100)
        axis.plot(steps, losses, color="#1f77b4", linewidth=1.5, label="training")
        if self.val_losses:
            held_out = sorted(self.val_losses)
            axis.plot(held_out, [self.val_losses[s] for s in held_out], color="#d62728", marker="o", markersize=3,
                      linewidth=1.5, label="validation (held-out episodes)")  # fmt: skip
            axis.legend(fontsize=8)
            losses += list(self.val_losses.values())
        for step in checkpoints:
            axis.axvline(step, color="#999999", linewidth=0.8, linestyle=":")
        axis.set(xlabel="step", ylabel="loss", title=f"{self.run.id} (dotted: checkpoints)")
        axis.set_yscale("log" if min(losses) > 0 else "linear")
        axis.grid(alpha=0.3)
        figure.tight_layout()
        target = self.run.dir / layout.TRAIN_LOSS_PNG
        figure.savefig(target.with_suffix(".tmp.png"))
        plt.close(figure)
        target.with_suffix(".tmp.png").replace(target)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
