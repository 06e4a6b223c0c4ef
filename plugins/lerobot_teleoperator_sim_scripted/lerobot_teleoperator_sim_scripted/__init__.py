"""LeRobot plugin: teleoperator type sim_scripted, runner's scripted operator of the simulated arm.

Importing it registers the type with LeRobot; the code lives in ``runner.lerobot_adapter.sim_devices``.
"""

import runner.lerobot_adapter.sim_devices  # noqa: F401
