"""The gymnasium ids of the Jaco arm envs (`control/hierarchy/jaco.py`), kept apart from the envs so that
registering them imports nothing heavy: `registration.py` iterates over `JACO_ENVS`."""

ENTRY_MODULE = "control.hierarchy.jaco"

JACO_ENVS = {
    "JacoPick-v0": "JacoPick",
    "JacoCatch-v0": "JacoCatch",
    "JacoToss-v0": "JacoToss",
    "JacoHit-v0": "JacoHit",
    "JacoRepetitivePicking-v0": "JacoRepetitivePicking",
    "JacoRepetitiveCatching-v0": "JacoRepetitiveCatching",
    "JacoServe-v0": "JacoServe",
}

JACO_TASKS = ("picking", "catching", "serve")  # presets in `jaco_config.py`
