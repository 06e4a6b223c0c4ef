"""LeRobot plugin: robot type sim_so101, runner's simulated SO-101 arm.

Importing it registers the type with LeRobot; the code lives in ``runner.lerobot_adapter.sim_devices``.
"""

import runner.lerobot_adapter.sim_devices  # noqa: F401
