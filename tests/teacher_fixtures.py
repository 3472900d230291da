"""Fixtures for the local provider-protocol test server."""

import pytest


@pytest.fixture(scope="session")
def teacher_server_session():
    from teacher_server import TeacherServer

    server = TeacherServer().start()
    yield server
    server.stop()


@pytest.fixture
def teacher_server(teacher_server_session, monkeypatch):
    """A running server with fresh counters and no faults; fake keys set in the environment."""
    teacher_server_session.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key-123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-456")
    return teacher_server_session
