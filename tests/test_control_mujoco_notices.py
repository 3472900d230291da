"""MuJoCo's deprecation notices about gymnasium's own model files stay out of a run's console and working folder
(no MUJOCO_LOG.TXT), while MuJoCo's other warnings are still printed."""

from __future__ import annotations

import subprocess
import sys

from control.mujoco_notices import warning_handler

RUN = """
import os, sys
from control.envs import make_env
from control.env_config import EnvConfig
env = make_env(EnvConfig(env_id="HalfCheetah-v5"), seed=0)()
env.reset(seed=0)
env.close()
import mujoco, numpy as np
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><body><freejoint/><geom size="0.1"/></body></worldbody></mujoco>')
data = mujoco.MjData(model)
data.qvel[:] = np.nan  # MuJoCo warns that the simulation is unstable: a warning the user should see
mujoco.mj_step(model, data)
"""


def test_half_cheetah_makes_no_notice_and_no_log_file_but_other_warnings_print(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", RUN], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "settotalmass" not in output
    assert "WARNING: Nan, Inf or huge value in QVEL" in output
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_the_handler_drops_only_compiler_deprecations(capsys):
    warning_handler(
        "compiler attribute 'settotalmass' is deprecated and will be removed in a future release: x"
    )
    warning_handler("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.")
    err = capsys.readouterr().err
    assert "settotalmass" not in err and "WARNING: Nan, Inf or huge value in QACC" in err


def test_a_handler_the_user_installed_stays():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mujoco\n"
            "from control.mujoco_notices import quiet_model_deprecations\n"
            "mine = lambda message: None\n"
            "mujoco.set_mju_user_warning(mine)\n"
            "quiet_model_deprecations('HalfCheetah-v5')\n"
            "assert mujoco.get_mju_user_warning() is mine\n"
            "mujoco.set_mju_user_warning(None)\n"
            "quiet_model_deprecations('HalfCheetah-v5')\n"
            "from control.mujoco_notices import warning_handler\n"
            "assert mujoco.get_mju_user_warning() is warning_handler\n",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
