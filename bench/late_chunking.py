"""What "late chunking" does to quality: sentence vectors pooled from chunk token embeddings.

Usage: python -m bench.late_chunking [--devset tests/data/devset.jsonl] [--index-dir DIR]

govrag embeds every sentence on its own as well as every chunk (70 % of an ingest's texts are
sentences). Late chunking runs the encoder once per chunk and takes each sentence's vector as the
mean of the chunk's contextual token embeddings over the sentence's characters, so the sentence
pass disappears. This script ingests the shipped corpus that way into a separate index folder
(default: a temporary one) and prints the ingest time and the dev-set retrieval and answer
metrics, to compare with ``rag eval --devset … [--answers]`` on the normal index. Chunk vectors
are the usual ones (mean over all tokens); titles, centering and everything else are unchanged.
Quality experiment: nothing here is used by ``rag``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.evaluate import evaluate_answers, evaluate_devset, load_devset
from rag.service import Assistant
from rag.service.indexing import Indexer, Prepared, Progress, no_progress


class LateChunkingIndexer(Indexer):
    """An Indexer that pools sentence vectors from the chunk pass."""

    def _vectors(self, p: Prepared, batch: int = 16) -> np.ndarray:
        """Chunk vectors, then sentence vectors, in ``p.texts`` order (not yet centered)."""
        import torch

        st: Any = self.embedder.model  # type: ignore[attr-defined]
        tok, bert = st.tokenizer, st[0].auto_model
        prefix = (getattr(st, "prompts", {}) or {}).get("passage", "")
        n = len(p.chunks)
        texts = p.texts[:n]
        dim = int(st.get_embedding_dimension())
        chunk_vecs = np.zeros((n, dim), np.float32)
        sent_vecs = np.zeros((len(p.sentences), dim), np.float32)
        done: set[int] = set()
        order = sorted(range(n), key=lambda i: len(texts[i]))
        for lo in range(0, n, batch):
            idx = order[lo : lo + batch]
            enc = tok([prefix + texts[i] for i in idx], padding=True, truncation=True,
                      max_length=512, return_tensors="pt", return_offsets_mapping=True)  # fmt: skip
            offsets = enc.pop("offset_mapping").numpy()
            with torch.inference_mode():
                hidden = bert(**enc).last_hidden_state.numpy()
            mask = enc["attention_mask"].numpy().astype(bool)
            for j, i in enumerate(idx):
                chunk_vecs[i] = _unit(hidden[j][mask[j]].mean(0))
                c = p.chunks[i]
                body = len(prefix) + len(texts[i]) - len(c.text)  # where the chunk text starts
                for row in p.chunk_sentences[i]:
                    if row in done:
                        continue
                    _, s, e = p.sentences[row]
                    a, b = body + s - c.start, body + e - c.start
                    tokens = [t for t, (x, y) in enumerate(offsets[j])
                              if mask[j][t] and y > x and y > a and x < b]  # fmt: skip
                    if tokens:
                        sent_vecs[row] = _unit(hidden[j][tokens].mean(0))
                        done.add(row)
        missing = len(p.sentences) - len(done)
        if missing:
            raise RuntimeError(f"{p.rel}: {missing} sentences fell outside their chunk's tokens")
        return np.concatenate([chunk_vecs, sent_vecs])

    def embed_prepared(
        self, prepared: list[Prepared], progress: Progress = no_progress
    ) -> np.ndarray:
        vecs = [self._vectors(p) for p in prepared if p.texts]
        return np.concatenate(vecs) if vecs else np.zeros((0, 1))


class LateChunkingAssistant(Assistant):
    """An Assistant whose ingest uses :class:`LateChunkingIndexer`."""

    indexer_class = LateChunkingIndexer


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", type=Path, default=Path("tests/data/devset.jsonl"))
    ap.add_argument("--index-dir", type=Path, help="where to build the index (default: temporary)")
    args = ap.parse_args()
    index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="govrag-late-")) / "index"
    assistant = LateChunkingAssistant(Settings.from_env(index_dir=index_dir))
    t = time.perf_counter()
    assistant.ingest(rebuild=True)
    ingest_s = round(time.perf_counter() - t, 1)
    questions = load_devset(args.devset)
    retrieval = evaluate_devset(assistant.retriever, questions).to_json()
    answers = evaluate_answers(assistant.ask, assistant.retriever.index, questions).to_json()
    print(json.dumps({"index_dir": str(index_dir), "ingest_s": ingest_s,
                      "retrieval": retrieval, "answers": answers}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
