"""Curating recordings: new datasets made from record runs (episodes dropped, task strings rewritten, a
train/held-out split, several recordings merged), each a run of its own; the sources are never modified.

``plans`` decides and checks what an operation makes from the sources' metadata alone; ``build`` makes it
with LeRobot's dataset tools (runner.lerobot_adapter.dataset_edits)."""
