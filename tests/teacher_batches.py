"""Batch endpoints for the local teacher server: OpenAI `/v1/files` + `/v1/batches` and Anthropic
`/v1/messages/batches`, enough for the official SDKs' create / retrieve / results calls.

A batch is answered when it is created (same fake teacher, faults and counters as the live endpoints) but
reports itself in progress for `polls_before_done` status calls, so clients have to poll. Batches can be
listed (newest first, paginated) like the providers', OpenAI ones with their `metadata`.

`after_accept` simulates a client lost in the window between the provider accepting a batch and the client
hearing of it: "drop" records the batch and hangs up without answering; ("kill", pid) also SIGKILLs that
process first (a job run as a subprocess). It applies to the next batch created, once.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import itertools
import json
import os
import re
import signal
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from teacher_server import corrupt, task_of

_ids = itertools.count(1)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


class BatchEmulator:
    """Files and batches of one `TeacherServer`; `route` answers a request or returns False."""

    def __init__(self, server: Any):
        self.server = server
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls_before_done = 1
        self.after_accept: str | tuple[str, int] | None = None
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.files.clear()
            self.batches.clear()
            self.polls_before_done = 1
            self.after_accept = None

    def _lost_after_accept(self, handler: Any) -> bool:
        """Apply `after_accept` to a batch just recorded: True when the client gets no answer."""
        with self.lock:
            action, self.after_accept = self.after_accept, None
        if action is None:
            return False
        if isinstance(action, tuple) and action[0] == "kill":
            os.kill(action[1], signal.SIGKILL)
        handler.close_connection = True
        handler.connection.shutdown(2)  # hang up without a reply
        return True

    def _page(self, handler: Any, ids: list[str], render: Any, after_key: str) -> None:
        """One page of a newest-first listing, in the provider's cursor format."""
        query = parse_qs(urlsplit(handler.path).query)
        limit = int(query.get("limit", ["20"])[0])
        after = query.get(after_key, [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        page = ids[start : start + limit]
        for batch_id in page:  # a look at a batch lets time pass, as a status call does
            self.batches[batch_id]["polls"] += 1
        body: dict[str, Any] = {
            "data": [render(b) for b in page],
            "has_more": start + limit < len(ids),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
        if after_key == "after":
            body["object"] = "list"
        handler._send(200, body)

    # -- answering one request of a batch, counted like a live one ----------------------------------------
    def _answer(self, endpoint: str, system: str, user_text: str) -> tuple[str | None, dict]:
        server = self.server
        with server._lock:
            server.requests[endpoint] += 1
            server.by_fingerprint[hashlib.sha256((system + user_text).encode()).hexdigest()] += 1
        fault = server._next_fault(user_text)
        try:
            block = json.loads(user_text)
        except json.JSONDecodeError:
            block = {}
        return fault, server.responder(task_of(system), block)

    def openai_line(self, line: dict) -> dict:
        body = line["body"]
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = _text_of(next((m for m in messages if m["role"] == "user"), {"content": ""})["content"])
        fault, answer = self._answer("openai.batch", system, user)
        out: dict[str, Any] = {"id": f"batch_req_{next(_ids)}", "custom_id": line["custom_id"], "error": None}
        if fault in ("429", "500", "503"):
            out["response"] = {
                "status_code": int(fault),
                "request_id": "req_local",
                "body": {"error": {"message": f"injected {fault}", "type": "server_error"}},
            }
            return out
        text, _ = corrupt("", answer, fault or "")
        out["response"] = {
            "status_code": 200,
            "request_id": "req_local",
            "body": {
                "id": "chatcmpl-batch",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": len(user) // 4,
                    "completion_tokens": len(text) // 4,
                    "total_tokens": (len(user) + len(text)) // 4,
                },
            },
        }
        return out

    def anthropic_line(self, entry: dict) -> dict:
        params = entry["params"]
        user = _text_of(params.get("messages", [{}])[0].get("content", ""))
        fault, answer = self._answer("anthropic.batch", params.get("system", ""), user)
        if fault in ("429", "500", "503"):
            result = {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "api_error", "message": f"injected {fault}"}},
            }
            return {"custom_id": entry["custom_id"], "result": result}
        text, clean = corrupt("", answer, fault or "")
        tools = params.get("tools")
        if tools and clean:
            blocks = [
                {"type": "tool_use", "id": "toolu_b", "name": tools[0]["name"], "input": json.loads(text)}
            ]
            stop = "tool_use"
        else:
            blocks, stop = [{"type": "text", "text": text}], "end_turn"
        message = {
            "id": "msg_batch",
            "type": "message",
            "role": "assistant",
            "model": params.get("model", ""),
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": len(user) // 4, "output_tokens": len(text) // 4},
        }
        return {"custom_id": entry["custom_id"], "result": {"type": "succeeded", "message": message}}

    # -- protocol objects ---------------------------------------------------------------------------------
    def _openai_batch(self, batch_id: str) -> dict:
        b = self.batches[batch_id]
        done = b["polls"] >= self.polls_before_done
        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": b["input_file_id"],
            "completion_window": "24h",
            "status": "completed" if done else "in_progress",
            "created_at": b["created"],
            "output_file_id": b["output_file_id"] if done else None,
            "error_file_id": None,
            "metadata": b.get("metadata"),
            "request_counts": {"total": b["n"], "completed": b["n"] if done else 0, "failed": 0},
        }

    def _anthropic_batch(self, batch_id: str, base: str) -> dict:
        b = self.batches[batch_id]
        done = b["polls"] >= self.polls_before_done
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b["created"]))
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if done else "in_progress",
            "request_counts": {
                "processing": 0 if done else b["n"],
                "succeeded": b["n"] if done else 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": stamp,
            "expires_at": stamp,
            "ended_at": stamp if done else None,
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch_id}/results" if done else None,
        }

    def route(self, handler: Any, method: str, raw: bytes) -> bool:
        """Answer `handler`'s request if it is a batch route."""
        path = handler.path.split("?")[0].rstrip("/")
        base = f"http://{handler.headers.get('Host')}"
        if method == "GET" and path == "/v1/batches":
            with self.lock:
                ids = [b for b in reversed(self.batches) if b.startswith("batch_")]
                self._page(handler, ids, self._openai_batch, "after")
            return True
        if method == "GET" and path == "/v1/messages/batches":
            with self.lock:
                ids = [b for b in reversed(self.batches) if b.startswith("msgbatch_")]
                self._page(handler, ids, lambda b: self._anthropic_batch(b, base), "after_id")
            return True
        if method == "POST" and path == "/v1/files":
            ctype = handler.headers.get("Content-Type", "")
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + raw
            )
            data = next(
                (
                    p.get_payload(decode=True)
                    for p in msg.iter_parts()
                    if p.get_param("name", header="content-disposition") == "file"
                ),
                b"",
            )
            file_id = f"file-{next(_ids)}"
            with self.lock:
                self.files[file_id] = data
            handler._send(
                200,
                {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(data),
                    "created_at": int(time.time()),
                    "filename": "batch.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
            return True
        if method == "GET" and (m := re.fullmatch(r"/v1/files/([\w-]+)/content", path)):
            data = self.files.get(m.group(1))
            if data is None:
                handler._send(404, {"error": {"message": "no such file", "type": "not_found"}})
                return True
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return True
        if method == "POST" and path == "/v1/batches":
            body = json.loads(raw or b"{}")
            lines = [
                json.loads(x) for x in self.files[body["input_file_id"]].decode().splitlines() if x.strip()
            ]
            out = "\n".join(json.dumps(self.openai_line(x)) for x in lines).encode() + b"\n"
            batch_id, out_id = f"batch_{next(_ids)}", f"file-{next(_ids)}"
            with self.lock:
                self.files[out_id] = out
                self.batches[batch_id] = {
                    "input_file_id": body["input_file_id"],
                    "output_file_id": out_id,
                    "n": len(lines),
                    "polls": 0,
                    "created": int(time.time()),
                    "metadata": body.get("metadata"),
                }
                self.server.requests["openai.batches.create"] += 1
            if self._lost_after_accept(handler):
                return True
            handler._send(200, self._openai_batch(batch_id))
            return True
        if method == "GET" and (m := re.fullmatch(r"/v1/batches/([\w-]+)", path)):
            with self.lock:
                if m.group(1) not in self.batches:
                    handler._send(404, {"error": {"message": "no such batch", "type": "not_found"}})
                    return True
                self.batches[m.group(1)]["polls"] += 1
                body = self._openai_batch(m.group(1))
            handler._send(200, body)
            return True
        if method == "POST" and path == "/v1/messages/batches":
            entries = json.loads(raw or b"{}")["requests"]
            results = [self.anthropic_line(e) for e in entries]
            batch_id = f"msgbatch_{next(_ids)}"
            with self.lock:
                self.batches[batch_id] = {
                    "results": results,
                    "n": len(entries),
                    "polls": 0,
                    "created": int(time.time()),
                }
                self.server.requests["anthropic.batches.create"] += 1
            if self._lost_after_accept(handler):
                return True
            handler._send(200, self._anthropic_batch(batch_id, base))
            return True
        if method == "GET" and (m := re.fullmatch(r"/v1/messages/batches/([\w-]+)(/results)?", path)):
            with self.lock:
                b = self.batches.get(m.group(1))
                if b is None:
                    handler._send(
                        404, {"type": "error", "error": {"type": "not_found_error", "message": "no batch"}}
                    )
                    return True
                if m.group(2):
                    data = ("\n".join(json.dumps(r) for r in b["results"]) + "\n").encode()
                    handler.send_response(200)
                    handler.send_header("Content-Type", "application/binary")
                    handler.send_header("Content-Length", str(len(data)))
                    handler.end_headers()
                    handler.wfile.write(data)
                    return True
                b["polls"] += 1
                body = self._anthropic_batch(m.group(1), base)
            handler._send(200, body)
            return True
        return False
