"""LeRobot plugin: env type runner_sim, runner's pick-and-place world for lerobot-eval.

Importing it registers the type with LeRobot; the code lives in ``runner.lerobot_adapter.sim_env``.
"""

import runner.lerobot_adapter.sim_env  # noqa: F401
