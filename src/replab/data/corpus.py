"""A text corpus as chunks of tokens: ``text:PATH[,tokenizer=word|bpe][,seq_len=64]...``.

The corpus (a UTF-8 file, or the files of a folder in sorted order) is one token stream cut into
consecutive chunks of ``seq_len`` tokens; the deterministic 90/10 split is over chunks. Options:
``tokenizer`` (word or bpe, see ``data.tokenizers``), ``seq_len``, ``min_count`` (word) and
``vocab_size`` (bpe).
"""

from __future__ import annotations

from pathlib import Path

from replab.data.base import DataError
from replab.data.readers import parse_options
from replab.data.tokenizers import encode_stream, train_tokenizer
from replab.data.tokens import TokenDataset, chunk_stream
from replab.registry import register_dataset
from replab.specs import Option

TEXT_OPTIONS = (
    Option("tokenizer", str, "word", choices=("word", "bpe")),
    Option("seq_len", int, 64, min=2),
    Option("min_count", int, 5, min=1),
    Option("vocab_size", int, 2048, min=260),
)


def read_corpus(path: Path) -> str:
    """A UTF-8 file, or the regular files of a folder (recursively, sorted, hidden ones
    skipped) joined by blank lines."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"{path}: folder holds no files")
    else:
        files = [path]
    texts = []
    for f in files:
        try:
            texts.append(f.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"{f}: not UTF-8 text (bad byte at offset {e.start})") from None
        except OSError as e:
            raise DataError(f"{f}: cannot read ({e.strerror})") from None
    text = "\n\n".join(texts)
    if not text.strip():
        raise DataError(f"{path}: no text")
    return text


def corpus_tokenizer(text: str, path: Path, opts: dict):
    """The tokeniser the options ask for, trained on ``text``; errors name ``path``."""
    try:
        return train_tokenizer(text, opts["tokenizer"], opts["min_count"], opts["vocab_size"])
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


@register_dataset("text", takes_argument=True)
def text_corpus(arg: str) -> TokenDataset:
    """A UTF-8 text file or folder as chunks of tokens: text:PATH[,tokenizer=word|bpe,...]."""
    path, opts = parse_options(arg, "text", TEXT_OPTIONS, example="corpus.txt")
    text = read_corpus(path)
    tok = corpus_tokenizer(text, path, opts)
    x = chunk_stream(encode_stream(tok, text), opts["seq_len"])
    return TokenDataset(x, tok, name=f"text:{path.name}")
