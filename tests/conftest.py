"""Test-wide settings: never touch the network, keep torch to the cores we have."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

from model_fixtures import *  # noqa: E402,F401,F403
from rlhf_fixtures import *  # noqa: E402,F401,F403
from teacher_fixtures import *  # noqa: E402,F401,F403
