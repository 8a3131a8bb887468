"""The word and BPE tokenisers, and the tokeniser a run keeps (``tokenizer.json``)."""

import pytest
from text_samples import PLAY

from replab.data import make_dataset
from replab.data.base import DataError
from replab.data.tokenizers import (
    WORD_RE,
    BPETokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_json,
)


def test_word_tokenizer_lowercases_keeps_apostrophes_and_drops_rare_words():
    text = "The cat; the CAT, the dog. We'll know't! the"
    tok = WordTokenizer.train(text, min_count=2)
    assert tok.words == ["<pad>", "the", "cat"]  # by count, then alphabetically
    assert tok.counts == [0, 4, 2]
    assert tok.encode("THE dog cat").tolist() == [1, 2]  # 'dog' is rarer than min_count: dropped
    assert WORD_RE.findall("we'll know't 3rd") == ["we'll", "know't", "3rd"]
    again = tokenizer_from_json(tok.to_json())
    assert again.words == tok.words and again.encode("cat the").tolist() == [2, 1]


def test_bpe_tokenizer_is_lossless_deterministic_and_pads_with_zero():
    text = PLAY * 20
    a = BPETokenizer.train(text, vocab_size=300)
    b = BPETokenizer.train(text, vocab_size=300)
    assert a.to_json() == b.to_json()
    assert a.token_to_id("<pad>") == 0 and a.vocab_size <= 300
    ids = a.encode("O Romeo, wherefore art thou?")
    assert 0 not in ids.tolist()
    assert a.decode(ids) == "O Romeo, wherefore art thou?"
    assert tokenizer_from_json(a.to_json()).encode("Juliet").tolist() == a.encode("Juliet").tolist()
    lengths = a.token_bytes()
    assert lengths[ids].sum() == len("O Romeo, wherefore art thou?")


def test_tokenizer_is_saved_in_the_run_and_reloaded_without_the_corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(PLAY * 5)
    for spec in (f"text:{path},min_count=1,seq_len=8", f"text:{path},tokenizer=bpe,seq_len=8"):
        data = make_dataset(spec)
        run = tmp_path / ("run-" + data.tokenizer.kind)
        data.split("train").save_artifacts(run)  # what the training loop calls
        tok = load_tokenizer(run)
        assert tok.kind == data.tokenizer.kind
        assert (
            tok.encode("Juliet is the sun").tolist()
            == data.tokenizer.encode("Juliet is the sun").tolist()
        )
    with pytest.raises(DataError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_tokenizer(tmp_path)
