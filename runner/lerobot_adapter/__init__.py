"""Every call into LeRobot goes through this package, so a LeRobot upgrade touches one place.

Importing it registers runner's simulated devices as LeRobot types (``sim_so101``, ``sim_scripted``); the
device classes are exported here because LeRobot's factory looks for ``<Name>`` next to ``<Name>Config``.
"""

from runner.lerobot_adapter.sim_devices import SimScripted, SimScriptedConfig, SimSO101, SimSO101Config

__all__ = ["SimSO101", "SimSO101Config", "SimScripted", "SimScriptedConfig"]
