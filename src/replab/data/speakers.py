"""Who speaks this line: a play's lines labelled by speaker (``speakers:PATH``).

The play is in tinyshakespeare's layout (a ``NAME:`` line, the speech, a blank line). The
``speakers`` most frequent speakers are the classes; each example is one line (``unit=line``) or
one whole speech (``unit=speech``), tokenised exactly as ``text:`` tokenises the same file.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from replab.data.base import DataError
from replab.data.corpus import TEXT_OPTIONS, corpus_tokenizer, read_corpus
from replab.data.readers import parse_options
from replab.data.tokens import TokenDataset, pad_rows
from replab.registry import register_dataset
from replab.specs import Option

SPEAKER_OPTIONS = (
    *TEXT_OPTIONS,
    Option("speakers", int, 10, min=2),
    Option("unit", str, "line", choices=("line", "speech")),
)
_SPEAKER_RE = re.compile(r"^([A-Z][A-Za-z' .-]*[A-Za-z.]):\s*$")


def parse_speeches(text: str) -> list[tuple[str, list[str]]]:
    """Play text in tinyshakespeare's layout (a ``NAME:`` line, the speech, a blank line) ->
    [(speaker, lines of the speech)], the name line removed."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.strip("\n").splitlines() if ln.strip()]
        if len(lines) >= 2:
            m = _SPEAKER_RE.match(lines[0].strip())
            if m:
                out.append((m.group(1).strip(), [ln.strip() for ln in lines[1:]]))
    return out


@register_dataset("speakers", takes_argument=True)
def speakers(arg: str) -> TokenDataset:
    """Who speaks this line: a play's lines labelled by speaker (tinyshakespeare's layout)."""
    path, opts = parse_options(arg, "speakers", SPEAKER_OPTIONS, example="input.txt")
    text = read_corpus(path)
    speeches = parse_speeches(text)
    if not speeches:
        raise DataError(f"{path}: no speeches found (expected 'NAME:' lines followed by text)")
    if opts["unit"] == "line":
        examples = [(who, ln) for who, lines in speeches for ln in lines]
    else:
        examples = [(who, "\n".join(lines)) for who, lines in speeches]
    freq = Counter(who for who, _ in examples)
    top = sorted(freq, key=lambda w: (-freq[w], w))[: opts["speakers"]]
    if len(top) < 2:
        raise DataError(f"{path}: fewer than two speakers")
    label = {w: i for i, w in enumerate(top)}
    # the tokeniser of the whole file, exactly as text:PATH builds it
    tok = corpus_tokenizer(text, path, opts)
    chosen = [(who, t) for who, t in examples if who in label]
    rows = tok.encode_batch([t for _, t in chosen])
    keep = [i for i, r in enumerate(rows) if len(r)]
    x = pad_rows([rows[i] for i in keep], opts["seq_len"])
    y = np.asarray([label[chosen[i][0]] for i in keep])
    return TokenDataset(x, tok, name=f"speakers:{path.name}", y=y, class_names=top)
