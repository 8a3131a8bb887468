"""text:PATH: a corpus as chunks of tokens, and its one-line errors."""

from collections import Counter

import numpy as np
import pytest

from replab.data import make_dataset
from replab.data.base import DataError


def test_text_corpus_chunks_the_token_stream(tmp_path):
    words = [f"w{i % 7}" for i in range(1000)]
    (tmp_path / "c.txt").write_text(" ".join(words))
    data = make_dataset(f"text:{tmp_path / 'c.txt'},seq_len=16,min_count=1")
    tok = data.tokenizer
    assert data.info.kind == "tokens" and data.info.shape == (16,)
    assert data.info.vocab_size == 8 == tok.vocab_size
    assert len(data) == 1000 // 16
    stream = np.asarray([tok.token_to_id(w) for w in words[: 16 * len(data)]])
    assert np.array_equal(data.get_batch(np.arange(len(data)))["x"].numpy().ravel(), stream)
    # token counts: those of the training split's chunks, counted independently
    rows = data.get_batch(data.split("train").indices)["x"].numpy().ravel()
    expected = Counter(rows.tolist())
    assert data.info.token_counts == tuple(expected.get(i, 0) for i in range(8))


def test_text_folder_reads_files_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("beta " * 40)
    (tmp_path / "a.txt").write_text("alpha " * 40)
    (tmp_path / ".hidden").write_text("gamma " * 40)
    data = make_dataset(f"text:{tmp_path},seq_len=8,min_count=1")
    assert data.tokenizer.token_to_id("gamma") is None
    x = data.get_batch(np.arange(len(data)))["x"].numpy().ravel()
    first_beta = list(x).index(data.tokenizer.token_to_id("beta"))
    assert first_beta == 40  # all of a.txt comes first


@pytest.mark.parametrize(
    "suffix, content, message",
    [
        ("missing.txt", None, "no such file or directory"),
        ("bad.txt", b"caf\xe9 latin-1", "not UTF-8 text (bad byte at offset 3)"),
        ("empty.txt", b"   \n", "no text"),
        ("ok.txt,colour=red", b"a b c", "unknown option 'colour'"),
        ("ok.txt,seq_len=x", b"a b c", "option seq_len must be an integer"),
        ("ok.txt,seq_len=1", b"a b c", "option seq_len must be >= 2"),
        ("ok.txt,tokenizer=chars", b"a b c", "option tokenizer='chars'"),
        ("ok.txt,min_count=9", b"a b c", "lower min_count"),
        ("ok.txt,seq_len=64,min_count=1", b"a b c", "too little text"),
    ],
)
def test_bad_text_input_is_one_line_data_error(tmp_path, suffix, content, message):
    name = suffix.split(",")[0]
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as e:
        make_dataset(f"text:{tmp_path / suffix}")
    assert message in str(e.value) and "\n" not in str(e.value)
