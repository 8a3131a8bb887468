"""speakers:PATH, who speaks this line, and the bag-of-words baseline of token data."""

from collections import Counter

import numpy as np
import pytest
from text_samples import PLAY, SHAKESPEARE

from replab.data import make_dataset
from replab.data.speakers import parse_speeches


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


@pytest.mark.skipif(not SHAKESPEARE.is_dir(), reason="needs ../shared/data/tinyshakespeare")
def test_tinyshakespeare_speaker_task():
    data = make_dataset(f"speakers:{SHAKESPEARE / 'input.txt'}")
    assert data.class_names[:3] == ["GLOUCESTER", "DUKE VINCENTIO", "KING RICHARD II"]
    assert len(data.class_names) == 10 and 6000 < len(data) < 7000
    tok = data.tokenizer
    assert tok.token_to_id("gloucester") is not None  # other characters say the name...
    first = tok.decode(data.get_batch(np.arange(1))["x"][0].tolist())
    assert not first.startswith("gloucester")  # ...but the speaker line itself is removed
