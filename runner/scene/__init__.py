"""Did the scene change? What each camera sees now against what it saw while the policy's data was recorded.

``compare`` measures one camera: how its view moved (a rigid registration: shift in pixels, rotation,
scale) and how much of the static scene changed beyond that motion. ``references`` builds what a recording
saw (the episodes' start frames, their per-pixel median: the object, placed anew each episode, drops out).
Pure numpy and OpenCV: no LeRobot, no simulator.
"""
