"""Every call into LeRobot goes through this package, so a LeRobot upgrade touches one place.

Importing it registers runner's simulated devices as LeRobot types (``sim_so101``, ``sim_scripted``); the
device classes are exported here because LeRobot's factory looks for ``<Name>`` next to ``<Name>Config``.
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

from runner.lerobot_adapter.sim_devices import SimScripted, SimScriptedConfig, SimSO101, SimSO101Config  # noqa: E402

__all__ = ["SimSO101", "SimSO101Config", "SimScripted", "SimScriptedConfig"]
