"""Every call into LeRobot goes through this package, so a LeRobot upgrade touches one place.

Importing the package itself is cheap (``checkpoints`` reads LeRobot's layout without LeRobot). runner's
own LeRobot device types (the simulated ``sim_so101`` and ``sim_scripted``, the ``runner_emulated`` camera)
are registered with LeRobot when ``devices`` is imported; they are also reachable here, lazily, because
LeRobot's factory looks for ``<Name>`` in the package of ``<Name>Config``.
"""

import logging
import os
import warnings

# Before anything imports them: SVT-AV1 prints its whole configuration for every video it encodes, and
# `datasets` draws a progress bar for every episode saved. Errors still show.
os.environ.setdefault("SVT_LOG", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
warnings.filterwarnings("ignore", message="Cannot enable progress bars")
logging.getLogger("OpenGL").setLevel(logging.WARNING)
# runner decodes video with pyav everywhere; LeRobot's probe for torchcodec (which needs a system FFmpeg)
# would print a traceback whenever a dataset is made without naming a backend (its rollout recorder does).
logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)

DEVICE_MODULES = {
    "SimSO101": "sim_devices",
    "SimSO101Config": "sim_devices",
    "SimScripted": "sim_devices",
    "SimScriptedConfig": "sim_devices",
    "EmulatedCamera": "emulated_camera",
    "EmulatedCameraConfig": "emulated_camera",
}


def __getattr__(name: str):
    if name in DEVICE_MODULES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{DEVICE_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
