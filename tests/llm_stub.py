"""A tiny OpenAI-compatible chat server for tests: real HTTP on loopback, scripted behaviour.

``POST /v1/chat/completions`` answers according to ``behaviour``:

* ``"good"``: quotes the first sentence of source 1 word for word and cites it, then a second
  sentence citing source 2 — what a well-behaved model does;
* ``"bad_citation"``: cites a source number that was not given;
* ``"uncited"``: a fluent answer without any ``[n]``;
* ``"fake_quote"``: cites source 1 but "quotes" words that are not in it;
* ``"no_answer"``: replies ``NO_ANSWER``;
* ``"naive"``: a gullible model that obeys any "ignore previous instructions" line it reads in
  the request (from a planted document) by replying ``PWNED``, else behaves as ``"good"``.

Every request body is kept in ``requests`` so tests can inspect the prompt that was sent.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SOURCE = re.compile(r"<<<SOURCE (\d+) (\w+)>>>\n[^\n]*\n(.*?)\n<<<END SOURCE \1 \2>>>", re.S)


def first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?。！？])(\s|$)", text.strip(), re.S)
    return " ".join((m.group(1) if m else text.strip()[:120]).split())


def scripted_reply(behaviour: str, messages: list[dict[str, Any]]) -> str:
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    sources = {int(n): body for n, _, body in _SOURCE.findall(user)}
    if behaviour == "naive" and "ignore previous instructions" in user.lower():
        return "PWNED"
    if behaviour == "no_answer":
        return "NO_ANSWER"
    if behaviour == "bad_citation":
        return f"The rules were adopted in 2024 [{len(sources) + 3}]."
    if behaviour == "uncited":
        return "The rules were adopted after a long debate. Critics were not convinced."
    if behaviour == "fake_quote":
        return 'The minister said "we will ban every algorithm by next Tuesday" [1].'
    one = first_sentence(sources.get(1, ""))
    reply = f'Source 1 states: "{one}" [1].'
    if 2 in sources:
        reply += " A second source covers the same subject [2]."
    return reply


class StubLLM:
    """Start with ``with StubLLM("good") as stub:``; ``stub.base_url`` is the ``/v1`` URL."""

    def __init__(self, behaviour: str = "good") -> None:
        self.behaviour = behaviour
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                content = scripted_reply(stub.behaviour, body["messages"])
                payload = json.dumps(
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "stub"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
