"""Session-wide fixtures that build the tiny offline models once."""

import pytest


@pytest.fixture(scope="session")
def tiny_lm_path(tmp_path_factory):
    from align.models.tiny import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), seed=0)


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory):
    from align.models.tiny import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), seed=0)


@pytest.fixture
def tiny_lm(tiny_lm_path):
    from align.models.loading import load_policy

    return load_policy(str(tiny_lm_path), kind="causal", dtype="float32")


@pytest.fixture
def tiny_vlm(tiny_vlm_path):
    from align.models.loading import load_policy

    return load_policy(str(tiny_vlm_path), kind="vlm", dtype="float32")
