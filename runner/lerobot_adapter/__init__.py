"""Every call into LeRobot goes through this package, so a LeRobot upgrade touches one place.

Importing the package itself is cheap (``checkpoints`` reads LeRobot's layout without LeRobot). The
simulated devices (``sim_so101``, ``sim_scripted``) are registered with LeRobot when ``recording`` is
imported; they are also reachable here, lazily, because LeRobot's factory looks for ``<Name>`` in the
package of ``<Name>Config``.
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

SIM_DEVICES = ("SimSO101", "SimSO101Config", "SimScripted", "SimScriptedConfig")


def __getattr__(name: str):
    if name in SIM_DEVICES:
        from runner.lerobot_adapter import sim_devices

        return getattr(sim_devices, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
