"""Fixtures for the local provider-protocol test server."""

import socket
import subprocess
import sys
from pathlib import Path

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_process():
    """The server in its own process (50 ms latency), for jobs run as subprocesses; yields its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "teacher_server.py"),
            "--port",
            str(port),
            "--latency-ms",
            "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert "listening" in proc.stdout.readline()
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()
