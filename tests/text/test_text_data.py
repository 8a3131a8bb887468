"""Text data: the word and BPE tokenisers, text:PATH, the speaker task, the bilingual corpus."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from replab.data import make_dataset
from replab.data.base import DataError
from replab.data.text import (
    WORD_RE,
    BPETokenizer,
    WordTokenizer,
    bilingual_dictionary,
    bilingual_text,
    dictionary_files,
    load_tokenizer,
    parse_speeches,
    tokenizer_from_json,
)

SHAKESPEARE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tinyshakespeare"

PLAY = """ROMEO:
But soft, what light through yonder window breaks?
It is the east, and Juliet is the sun.

JULIET:
O Romeo, Romeo, wherefore art thou Romeo?

ROMEO:
Shall I hear more, or shall I speak at this?

NURSE:
Madam!

ROMEO:
I take thee at thy word.
"""


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


def test_speeches_are_parsed_without_the_speaker_name():
    speeches = parse_speeches(PLAY)
    assert [who for who, _ in speeches] == ["ROMEO", "JULIET", "ROMEO", "NURSE", "ROMEO"]
    assert speeches[0][1][1] == "It is the east, and Juliet is the sun."


def test_speaker_task_labels_lines_of_the_most_frequent_speakers(tmp_path):
    path = tmp_path / "play.txt"
    path.write_text(PLAY)
    data = make_dataset(f"speakers:{path},speakers=2,min_count=1,seq_len=12")
    assert data.class_names == ["ROMEO", "JULIET"]  # NURSE (1 line) is third
    assert data.info.num_classes == 2 and data.info.shape == (12,)
    batch = data.get_batch(np.arange(len(data)))
    assert batch["y"].tolist() == [0, 0, 1, 0, 0]  # 4 Romeo lines, 1 Juliet line
    tok = data.tokenizer
    assert tok.decode(batch["x"][2].tolist()) == "o romeo romeo wherefore art thou romeo"
    # the NAME: line is not part of the example
    assert tok.decode(batch["x"][0].tolist()) == "but soft what light through yonder window breaks"
    # the same ids as text:PATH over the same file (one tokeniser for both)
    text = make_dataset(f"text:{path},min_count=1,seq_len=12")
    assert text.tokenizer.words == tok.words
    speech = make_dataset(f"speakers:{path},speakers=2,min_count=1,seq_len=12,unit=speech")
    assert len(speech) == 4 and speech.get_batch(np.arange(4))["y"].tolist() == [0, 1, 0, 0]


def test_bag_of_words_baseline_counts_tokens(tmp_path):
    path = tmp_path / "play.txt"
    path.write_text(PLAY)
    data = make_dataset(f"speakers:{path},speakers=2,min_count=1,seq_len=12")
    assert data.raw_baseline_name == "bag_of_words"
    x = data.get_batch(np.arange(len(data)))["x"]
    feats = data.raw_features(x)
    assert feats.shape == (len(data), data.info.vocab_size)
    for row, f in zip(x.numpy(), feats, strict=True):
        expected = Counter(int(i) for i in row if i != 0)
        assert {i: int(c) for i, c in enumerate(f) if c} == dict(expected)


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


def test_bilingual_dictionary_is_one_to_one_between_disjoint_vocabularies():
    pairs = bilingual_dictionary()
    a, b = zip(*pairs, strict=True)
    assert len(pairs) == 200 and len(set(a)) == 200 and len(set(b)) == 200
    text_a, text_b = bilingual_text("a"), bilingual_text("b")
    vocab_a, vocab_b = set(text_a.split()), set(text_b.split())
    assert not vocab_a & vocab_b  # nothing shared: translation must come from structure
    assert set(a) <= vocab_a and set(b) <= vocab_b
    files = dictionary_files()
    train = files["dictionary.train.txt"].splitlines()
    test = files["dictionary.test.txt"].splitlines()
    assert len(train) == 20 and len(test) == 180 and not set(train) & set(test)
    assert sorted(train + test) == sorted(files["dictionary.txt"].splitlines())


def test_bilingual_languages_differ_in_word_order_and_are_not_parallel():
    pairs = dict(bilingual_dictionary())
    verbs_a = set(list(pairs)[160:190])  # dictionary order: nouns, adjectives, verbs, preps
    verbs_b = {pairs[v] for v in verbs_a}
    lines_a = bilingual_text("a").splitlines()[:200]
    lines_b = bilingual_text("b").splitlines()[:200]
    assert all(ln.split()[-1] in verbs_b for ln in lines_b)  # b: the verb comes last
    assert not any(ln.split()[-1] in verbs_a for ln in lines_a)  # a: never last (SVO)
    translated = [" ".join(pairs.get(w, "") for w in ln.split()) for ln in lines_a]
    assert sum(t.split() == sorted(t.split()) for t in translated) < 200
    data = make_dataset("bilingual_b")
    assert data.info.shape == (64,) and data.info.vocab_size == 203


@pytest.mark.skipif(not SHAKESPEARE.is_dir(), reason="needs ../shared/data/tinyshakespeare")
def test_tinyshakespeare_speaker_task():
    data = make_dataset(f"speakers:{SHAKESPEARE / 'input.txt'}")
    assert data.class_names[:3] == ["GLOUCESTER", "DUKE VINCENTIO", "KING RICHARD II"]
    assert len(data.class_names) == 10 and 6000 < len(data) < 7000
    tok = data.tokenizer
    assert tok.token_to_id("gloucester") is not None  # other characters say the name...
    first = tok.decode(data.get_batch(np.arange(1))["x"][0].tolist())
    assert not first.startswith("gloucester")  # ...but the speaker line itself is removed
