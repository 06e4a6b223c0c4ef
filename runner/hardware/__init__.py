"""Real robot hardware: serial buses, cameras, calibration; and an emulated bus where no arm is plugged in."""
