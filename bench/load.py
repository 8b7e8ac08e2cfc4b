"""Load test: N concurrent gradio_client users asking and searching, plus one upload + re-index.

Usage:
    python bench/load.py --seconds 60 --clients 50            # serves a temporary copy itself
    python bench/load.py --url http://127.0.0.1:7860/ --index index --seconds 60

Without ``--url`` it copies ``corpus/`` (and ``index/`` if there is one) to a temporary folder,
ingests, serves the app on a free loopback port and drives it; the model is ``RAG_MODEL`` (default:
the real one). Every answer's citations and every hit are checked against the document text in
the index (``quote == text[start:end]``). Half-way through, one client uploads a new document
through the Corpus tab's handler (the browser's protocol: upload, then queue/join) and waits for
the re-index to finish. Prints a JSON report; exits 1 if any request failed or any citation was
wrong. Loopback only, bounded in clients and time.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_TEXT = (
    "Loadtest Gazette, 2026. The Ministry of Loadtesting announced a register of "
    "concurrency audits for AI systems. Every audit must be filed within thirty days.\n\n"
    "The quokka oversight board will publish the first audit results in the spring."
)
UPLOAD_QUESTION = "Which board will publish the first concurrency audit results?"


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int = 0
    asks: int = 0
    searches: int = 0
    errors: list[str] = field(default_factory=list)
    bad_citations: list[str] = field(default_factory=list)
    citations_checked: int = 0
    ask_p50_ms: float = 0.0
    ask_p95_ms: float = 0.0
    search_p50_ms: float = 0.0
    search_p95_ms: float = 0.0
    all_p50_ms: float = 0.0
    all_p95_ms: float = 0.0
    throughput_rps: float = 0.0
    upload_seconds: float = 0.0
    upload_log: str = ""
    uploaded_doc_found: bool = False
    connect_retries: int = 0  # setting up the clients, before the clock starts

    @property
    def ok(self) -> bool:
        return not self.errors and not self.bad_citations


def _pct(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    xs = sorted(samples)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 1)


class DocTexts:
    """Document texts from the index's SQLite table (read-only), reread for unknown ids."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        for attempt in range(20):  # the folder is swapped by a re-index: retry a moment later
            try:
                uri = (self.index_dir / "chunks.sqlite").resolve().as_uri() + "?mode=ro"
                with sqlite3.connect(uri, uri=True) as db:
                    rows = db.execute("SELECT doc_id, text FROM documents").fetchall()
                self._texts.update(rows)
                return
            except sqlite3.Error:
                time.sleep(0.05 * (attempt + 1))

    def get(self, doc_id: str) -> str | None:
        with self._lock:
            if doc_id not in self._texts:
                self._load()
            return self._texts.get(doc_id)


def _check(doc_texts: DocTexts, kind: str, item: dict[str, Any], quote_key: str) -> str:
    text = doc_texts.get(item["doc_id"])
    if text is None:
        return f"{kind}: unknown document {item['doc_id']!r}"
    if text[item["start"] : item["end"]] != item[quote_key]:
        return f"{kind}: {item['doc_id']}[{item['start']}:{item['end']}] != {quote_key}"
    return ""


def connect(url: str, report: LoadReport, attempts: int = 5) -> Any:
    """A gradio_client Client; setting one up is not part of the load, so retry a busy server."""
    from gradio_client import Client

    for attempt in range(attempts):
        try:
            return Client(url, verbose=False)
        except Exception:
            if attempt == attempts - 1:
                raise
            report.connect_retries += 1
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def _client_loop(client: Any, questions: list[str], seed: int, start: threading.Barrier,
                 stop_at: list[float], doc_texts: DocTexts, out: dict[str, Any],
                 lock: threading.Lock) -> None:  # fmt: skip
    rng = random.Random(seed)
    start.wait()
    while time.perf_counter() < stop_at[0]:
        q = rng.choice(questions)
        kind = "ask" if rng.random() < 0.5 else "search"
        t = time.perf_counter()
        try:
            if kind == "ask":
                res = client.predict(q, [], [], api_name="/ask")
            else:
                res = client.predict(q, 5, [], api_name="/search")
        except Exception as exc:
            with lock:
                out["errors"].append(f"{kind} {q!r}: {type(exc).__name__}: {exc}")
            continue
        dt = time.perf_counter() - t
        problems = []
        if kind == "ask":
            for c in res["citations"]:
                problems.append(_check(doc_texts, "citation", c, "quote"))
                if f"[{c['n']}]" not in res["answer"]:
                    problems.append(f"citation [{c['n']}] not marked in the answer")
            checked = len(res["citations"])
        else:
            problems = [_check(doc_texts, "hit", h, "text") for h in res["hits"]]
            checked = len(res["hits"])
            if not res["hits"]:
                problems.append(f"search {q!r} returned no hits")
        with lock:
            out["lat"][kind].append(dt)
            out["citations_checked"] += checked
            out["bad"].extend(p for p in problems if p)


def upload_through_ui(url: str, path: Path, timeout: float = 600) -> str:
    """Upload ``path`` with the Corpus tab's "Add and re-index" handler; return its log text.

    That handler is private to the browser (not in the API docs), so this speaks the browser's
    protocol: POST the file to /gradio_api/upload, join the queue with the handler's fn_index,
    read the server-sent events until the result.
    """
    import httpx

    base = url.rstrip("/")
    with httpx.Client(timeout=timeout) as http:
        config = http.get(f"{base}/config").json()
        button = next(c["id"] for c in config["components"]
                      if c.get("props", {}).get("value") == "Add and re-index")  # fmt: skip
        fn_index = next(i for i, d in enumerate(config["dependencies"])
                        if [button, "click"] in d["targets"])  # fmt: skip
        with path.open("rb") as fh:
            uploaded = http.post(f"{base}/gradio_api/upload", files={"files": (path.name, fh)})
        uploaded.raise_for_status()
        server_path = uploaded.json()[0]
        session = uuid.uuid4().hex[:10]
        file_data = {"path": server_path, "orig_name": path.name, "size": path.stat().st_size,
                     "meta": {"_type": "gradio.FileData"}}  # fmt: skip
        joined = http.post(f"{base}/gradio_api/queue/join", json={
            "data": [[file_data], "", "", "", "", "", ""], "fn_index": fn_index,
            "trigger_id": button, "session_hash": session, "event_data": None,
        })  # fmt: skip
        joined.raise_for_status()
        with http.stream("GET", f"{base}/gradio_api/queue/data",
                         params={"session_hash": session}) as events:  # fmt: skip
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    if not msg.get("success"):
                        raise RuntimeError(f"upload failed: {msg.get('output')}")
                    return str(msg["output"]["data"][0])
    raise RuntimeError("upload: the event stream ended without a result")


def run_load(url: str, index_dir: Path, *, clients: int = 50, seconds: float = 60.0,
             questions: list[str] | None = None, upload: bool = True,
             seed: int = 0) -> LoadReport:  # fmt: skip
    """Drive the app at ``url`` for ``seconds`` with ``clients`` threads; see the module doc."""
    from gradio_client import Client

    questions = questions or devset_questions()
    doc_texts = DocTexts(index_dir)
    warm = Client(url, verbose=False)  # the first request loads the index: not part of the load
    warm.predict(questions[0], 5, [], api_name="/search")
    warm.predict(questions[0], [], [], api_name="/ask")
    out: dict[str, Any] = {"errors": [], "bad": [], "lat": {"ask": [], "search": []},
                           "citations_checked": 0}  # fmt: skip
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [float("inf")]
    report = LoadReport(clients=clients, seconds=seconds)
    sessions = [connect(url, report) for _ in range(clients)]  # one connection per user
    threads = [
        threading.Thread(target=_client_loop, daemon=True,
                         args=(c, questions, seed + i, start, stop_at, doc_texts, out, lock))
        for i, c in enumerate(sessions)
    ]  # fmt: skip
    for t in threads:
        t.start()
    start.wait()  # every client connected: the clock starts now
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    if upload:
        time.sleep(seconds / 2)
        tmp = Path(tempfile.mkdtemp(prefix="govrag-load-"))
        try:
            src = tmp / "loadtest gazette.txt"
            src.write_text(UPLOAD_TEXT, encoding="utf-8")
            tu = time.perf_counter()
            try:
                report.upload_log = upload_through_ui(url, src)
            except Exception as exc:
                out["errors"].append(f"upload: {type(exc).__name__}: {exc}")
            report.upload_seconds = round(time.perf_counter() - tu, 2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for t in threads:
        t.join(timeout=seconds + 300)
    wall = time.perf_counter() - t0
    if upload and not any(e.startswith("upload") for e in out["errors"]):
        res = Client(url, verbose=False).predict(UPLOAD_QUESTION, 5, [], api_name="/search")
        report.uploaded_doc_found = any("quokka" in h["text"] for h in res["hits"])
        if not report.uploaded_doc_found:
            out["errors"].append("upload: the uploaded document is not searchable afterwards")
    asks, searches = out["lat"]["ask"], out["lat"]["search"]
    report.asks, report.searches = len(asks), len(searches)
    report.requests = len(asks) + len(searches)
    report.errors, report.bad_citations = out["errors"], out["bad"]
    report.citations_checked = out["citations_checked"]
    report.ask_p50_ms, report.ask_p95_ms = _pct(asks, 0.5), _pct(asks, 0.95)
    report.search_p50_ms, report.search_p95_ms = _pct(searches, 0.5), _pct(searches, 0.95)
    report.all_p50_ms, report.all_p95_ms = _pct(asks + searches, 0.5), _pct(asks + searches, 0.95)
    report.throughput_rps = round(report.requests / wall, 1)
    return report


def devset_questions() -> list[str]:
    path = ROOT / "tests" / "data" / "devset.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--url", help="A running app (loopback); default: serve a temporary copy.")
    ap.add_argument("--index", type=Path, help="Its index folder (to check citations).")
    ap.add_argument("--no-upload", action="store_true", help="Skip the upload + re-index.")
    args = ap.parse_args()
    if not 1 <= args.clients <= 200 or not 0 < args.seconds <= 600:
        ap.error("--clients must be in 1..200 and --seconds in (0, 600]")
    if args.url:
        if args.index is None:
            ap.error("--url needs --index (the app's index folder) to check citations")
        report = run_load(args.url, args.index, clients=args.clients, seconds=args.seconds,
                          upload=not args.no_upload)  # fmt: skip
    else:
        report = _serve_and_run(args)
    print(json.dumps(asdict(report) | {"ok": report.ok}, ensure_ascii=False, indent=2))
    sys.exit(0 if report.ok else 1)


def _serve_and_run(args: argparse.Namespace) -> LoadReport:
    from rag.app.ui import build_app, launch
    from rag.config import Settings
    from rag.service import Assistant

    tmp = Path(tempfile.mkdtemp(prefix="govrag-load-"))
    try:
        shutil.copytree(ROOT / "corpus", tmp / "corpus")
        if (ROOT / "index" / "manifest.json").exists():
            shutil.copytree(ROOT / "index", tmp / "index")
        assistant = Assistant(Settings.from_env(corpus_dir=tmp / "corpus", index_dir=tmp / "index"))
        print("ingesting (only what the copied index lacks)…", file=sys.stderr)
        assistant.ingest()
        port = free_port()
        app = build_app(assistant)
        launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        try:
            print(f"driving {args.clients} clients for {args.seconds:g} s…", file=sys.stderr)
            # The clients run in a second process: in this one they would compete with the
            # server for the GIL and inflate its latencies.
            cmd = [sys.executable, __file__, "--url", f"http://127.0.0.1:{port}/", "--index",
                   str(tmp / "index"), "--clients", str(args.clients), "--seconds",
                   str(args.seconds)] + (["--no-upload"] if args.no_upload else [])  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 900)
            if not proc.stdout.strip():
                raise RuntimeError(f"the load driver failed: {proc.stderr[-2000:]}")
            data = json.loads(proc.stdout)
            data.pop("ok", None)
            return LoadReport(**data)
        finally:
            app.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
