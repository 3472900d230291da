"""A local HTTP server that speaks the OpenAI chat-completions and Anthropic messages protocols, for driving
the real SDKs in tests. It answers as a deterministic fake teacher, injects faults on demand and counts
requests. Run standalone: `python tests/teacher_server.py --port 8765 --latency-ms 50`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = (
    "429",
    "500",
    "503",
    "slow",
    "prose",
    "truncated",
    "wrong_count",
    "out_of_range",
    "bad_verdict",
    # unusual replies a long job meets once in a while
    "401",  # the key is rejected: a job-wide error
    "400",  # this one request is refused (e.g. an image the provider cannot read)
    "html",  # a 200 with a text/html body (a proxy's error page)
    "not_json",  # a 200 that claims JSON but is not
    "empty_choices",  # a 200 with no choices (OpenAI) / no content blocks (Anthropic)
    "long",  # a long prose reply without JSON, `max_tokens` long: the repair turn will be needed
)
STATUS_FAULTS = {"429": 429, "500": 500, "503": 503, "401": 401, "400": 400}


def task_of(system: str) -> str:
    if "grade the reasoning" in system:
        return "score"
    if "correct a student's rationale" in system:
        return "correct"
    if "compare two rationales" in system:
        return "judge"
    return "unknown"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def default_responder(task: str, block: dict[str, Any]) -> dict[str, Any]:
    """A valid answer: score 1.0 for sentences mentioning a word of the correct answer, else 0.5; corrections
    append the correct answer; the judge prefers the rationale that names the correct answer, else 'tie'."""
    answer = block.get("correct_answer", "")
    words = {w for w in _words(answer.split(")", 1)[-1]) if len(w) > 2}
    if task == "score":
        sentences = list(block.get("sentences", {}).values())
        return {"scores": [1.0 if words & _words(s) else 0.5 for s in sentences]}
    if task == "correct":
        return {"corrected_rationale": f"{block.get('rationale', '').strip()} So the answer is {answer}."}
    if task == "judge":
        a = bool(words & _words(block.get("rationale_A", "")))
        b = bool(words & _words(block.get("rationale_B", "")))
        return {"verdict": "tie" if a == b else ("A" if a else "B"), "reason": "names the answer"}
    return {}


def corrupt(task: str, answer: dict[str, Any], fault: str, max_tokens: int = 1024) -> tuple[str, bool]:
    """(reply text, is_json_clean) for a content fault."""
    if fault == "prose":
        return f"Sure! Here is my assessment.\n```json\n{json.dumps(answer)}\n```\nHope this helps.", False
    if fault == "truncated":
        return json.dumps(answer)[:-5], False
    if fault == "wrong_count" and "scores" in answer:
        return json.dumps({"scores": answer["scores"] + [0.5]}), True
    if fault == "out_of_range" and "scores" in answer:
        return json.dumps({"scores": [1.7] + answer["scores"][1:]}), True
    if fault == "bad_verdict" and "verdict" in answer:
        return json.dumps({"verdict": "C", "reason": "?"}), True
    if fault == "long":
        return long_prose(max_tokens), False
    return json.dumps(answer), True


IMAGE_TOKENS = 765  # what both providers charge for a 512x512 image tile, roughly


def prompt_tokens_of(system: str, messages: list[dict]) -> int:
    """Input tokens the way a provider bills them: every turn's text (4 characters a token, the system
    prompt and earlier replies included) plus a flat count per image."""
    chars, images = len(system), 0
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if part.get("type") == "text":
                chars += len(part.get("text", ""))
            elif part.get("type") in ("image", "image_url"):
                images += 1
    return chars // 4 + IMAGE_TOKENS * images


def long_prose(tokens: int) -> str:
    """Prose with no JSON in it, `tokens` long by the server's count (4 characters a token)."""
    text = "Let me think about each sentence carefully before I answer. " * (tokens // 15 + 1)
    return text[: tokens * 4]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):  # clients that time out hang up: not an error here
        pass


class TeacherServer:
    """Owns the HTTP server thread, the fault queue and the counters."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0):
        self.latency_s = latency_ms / 1000
        self.slow_s = 5.0
        self.responder: Callable[[str, dict], dict] = default_responder
        self.faults: deque[str] = deque()
        self.rules: list[tuple[str, str, int]] = []  # (substring of user text, fault, remaining uses)
        self.requests: Counter[str] = Counter()  # per endpoint
        self.by_fingerprint: Counter[str] = Counter()
        self.user_texts: list[
            str
        ] = []  # the first user turn of every chat/messages request, in arrival order
        self.seen_auth: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._hold_until = 0  # requests wait until this many have arrived (see `hold`)
        self._hold_timeout_s = 0.0
        self._arrived = 0
        self._lock = threading.Lock()
        self._arrival = threading.Condition(self._lock)
        self.httpd = _QuietServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        from teacher_batches import BatchEmulator  # OpenAI/Anthropic batch endpoints (added by teacher jobs)

        self.batches = BatchEmulator(self)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TeacherServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def push(self, *faults: str) -> None:
        """Faults for the next requests, in order (one per request)."""
        for fault in faults:
            assert fault in FAULTS, fault
        self.faults.extend(faults)

    def rule(self, substring: str, fault: str, times: int = 10**9) -> None:
        """Inject `fault` into requests whose user text contains `substring` (up to `times` times)."""
        assert fault in FAULTS, fault
        self.rules.append((substring, fault, times))

    def hold(self, n: int, timeout_s: float = 10.0) -> None:
        """Hold every request until `n` requests have arrived (or `timeout_s` passed): a client that really
        keeps `n` in flight then shows `max_in_flight == n` however loaded the machine is."""
        with self._lock:
            self._hold_until, self._hold_timeout_s, self._arrived = n, timeout_s, 0

    def reset(self) -> None:
        with self._lock:
            self.in_flight = self.max_in_flight = self._arrived = self._hold_until = 0
            self.faults.clear()
            self.rules.clear()
            self.requests.clear()
            self.by_fingerprint.clear()
            self.user_texts.clear()
            self.seen_auth.clear()
            self.latency_s = 0.0
            self.responder = default_responder
        self.batches.reset()

    def total(self) -> int:
        return sum(self.requests.values())

    def sent(self, substring: str) -> int:
        """How many live requests (repair turns included) carried `substring` in their first user turn."""
        with self._lock:
            return sum(substring in text for text in self.user_texts)

    def _next_fault(self, user_text: str) -> str | None:
        with self._lock:
            for k, (substring, fault, times) in enumerate(self.rules):
                if substring in user_text and times > 0:
                    self.rules[k] = (substring, fault, times - 1)
                    return fault
            return self.faults.popleft() if self.faults else None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _send_raw(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path.rstrip("/") == "/stats":
                    with server._lock:
                        body = {
                            "requests": dict(server.requests),
                            "by_fingerprint": dict(server.by_fingerprint),
                        }
                    self._send(200, body)
                elif not server.batches.route(self, "GET", b""):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):  # noqa: N802
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server._arrived += 1
                    server._arrival.notify_all()
                    deadline = time.monotonic() + server._hold_timeout_s
                    while server._arrived < server._hold_until and time.monotonic() < deadline:
                        server._arrival.wait(deadline - time.monotonic())
                try:
                    self._post()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _post(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if len(raw) < length:  # the client died mid-request: nothing to answer, nothing to count
                    self.close_connection = True
                    return
                if server.batches.route(self, "POST", raw):
                    return
                body = json.loads(raw or b"{}")
                auth = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
                if self.path.endswith("/chat/completions"):
                    self._openai(body, auth)
                elif self.path.endswith("/messages"):
                    self._anthropic(body, auth)
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def _common(
                self, endpoint: str, system: str, user_text: str, auth: str
            ) -> tuple[str | None, dict, str]:
                with server._lock:
                    server.requests[endpoint] += 1
                    server.by_fingerprint[hashlib.sha256((system + user_text).encode()).hexdigest()] += 1
                    server.user_texts.append(user_text)
                    server.seen_auth.append(auth)
                if server.latency_s:
                    time.sleep(server.latency_s)
                fault = server._next_fault(user_text)
                task = task_of(system)
                try:
                    block = json.loads(user_text)
                except json.JSONDecodeError:
                    block = {}
                return fault, server.responder(task, block), task

            def _error(self, fault: str, anthropic: bool) -> bool:
                if fault == "slow":
                    time.sleep(server.slow_s)
                    return False
                if fault in STATUS_FAULTS:
                    status = STATUS_FAULTS[fault]
                    headers = {"Retry-After": "0.05"} if status == 429 else {}
                    kind = {
                        429: "rate_limit_error",
                        500: "api_error",
                        503: "overloaded_error",
                        401: "authentication_error",
                        400: "invalid_request_error",
                    }[status]
                    body = (
                        {"type": "error", "error": {"type": kind, "message": f"injected {fault}"}}
                        if anthropic
                        else {"error": {"message": f"injected {fault}", "type": kind, "code": fault}}
                    )
                    self._send(status, body, headers)
                    return True
                if fault == "html":
                    self._send_raw(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
                    return True
                if fault == "not_json":
                    self._send_raw(200, b"upstream connect error or disconnect", "application/json")
                    return True
                return False

            def _openai(self, body: dict, auth: str) -> None:
                messages = body.get("messages", [])
                system = next((m["content"] for m in messages if m["role"] == "system"), "")
                user = next((m for m in messages if m["role"] == "user"), {"content": ""})
                content = user["content"]
                user_text = (
                    content
                    if isinstance(content, str)
                    else "".join(p.get("text", "") for p in content if p.get("type") == "text")
                )
                if body.get("model") == "no-such-model":
                    self._send(
                        404, {"error": {"message": "model not found", "type": "invalid_request_error"}}
                    )
                    return
                fault, answer, _ = self._common("openai.chat", system, user_text, auth)
                if fault and self._error(fault, anthropic=False):
                    return
                max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 1024
                text, _ = corrupt("", answer, fault or "", max_tokens)
                prompt_tokens = prompt_tokens_of("", messages)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-local",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", ""),
                        "choices": []
                        if fault == "empty_choices"
                        else [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "length" if fault == "long" else "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": len(text) // 4,
                            "total_tokens": prompt_tokens + len(text) // 4,
                        },
                    },
                )

            def _anthropic(self, body: dict, auth: str) -> None:
                system = body.get("system", "")
                content = body.get("messages", [{}])[0].get("content", "")
                user_text = (
                    content
                    if isinstance(content, str)
                    else "".join(p.get("text", "") for p in content if p.get("type") == "text")
                )
                fault, answer, _ = self._common("anthropic.messages", system, user_text, auth)
                if fault and self._error(fault, anthropic=True):
                    return
                text, clean = corrupt("", answer, fault or "", body.get("max_tokens") or 1024)
                turns = body.get("messages", [])
                prompt_tokens = prompt_tokens_of(system, turns)
                tools = body.get("tools")
                if tools and clean:
                    blocks = [
                        {
                            "type": "tool_use",
                            "id": "toolu_local",
                            "name": tools[0]["name"],
                            "input": json.loads(text),
                        }
                    ]
                    stop = "tool_use"
                else:
                    blocks = [{"type": "text", "text": text}]
                    stop = "max_tokens" if fault == "long" else "end_turn"
                if fault == "empty_choices":
                    blocks = []
                self._send(
                    200,
                    {
                        "id": "msg_local",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model", ""),
                        "content": blocks,
                        "stop_reason": stop,
                        "stop_sequence": None,
                        "usage": {"input_tokens": prompt_tokens, "output_tokens": len(text) // 4},
                    },
                )

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = TeacherServer(port=args.port, latency_ms=args.latency_ms)
    print(f"listening on {server.openai_url} port {server.port}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
