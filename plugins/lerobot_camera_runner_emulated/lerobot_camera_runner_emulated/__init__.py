"""LeRobot plugin: camera type runner_emulated, a video file or test pattern played in real time.

Importing it registers the type with LeRobot; the code lives in ``runner.lerobot_adapter.emulated_camera``.
"""

import runner.lerobot_adapter.emulated_camera  # noqa: F401
