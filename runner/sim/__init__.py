"""The simulated world (MuJoCo). Pure simulation: no LeRobot here; the adapter registers it with LeRobot.

MuJoCo picks its OpenGL backend when it is first imported, so the choice is made here, before that import:
EGL where libEGL exists (GPU or Mesa), else OSMesa (software). PyOpenGL must agree with MuJoCo, or EGL
fails to make a context. An explicit MUJOCO_GL always wins.
"""

import ctypes.util
import os
import sys

if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl" if ctypes.util.find_library("EGL") else "osmesa"
if os.environ.get("MUJOCO_GL") in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
