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


@pytest.fixture(scope="session")
def tiny_family_path(tmp_path_factory):
    """`tiny_family_path(family)`: the folder of a tiny random model of that family (built once per session)."""
    from align.models.tiny_zoo import build_tiny_model

    built = {}

    def path(family):
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}"), seed=0)
        return built[family]

    return path
