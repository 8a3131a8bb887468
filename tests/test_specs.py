"""Options after a data set's path: declared once, checked with one-line errors."""

from pathlib import Path

import pytest

from replab.specs import Option, parse_path_options

OPTIONS = (
    Option("tokenizer", str, "word", choices=("word", "bpe")),
    Option("seq_len", int, 64, min=2),
    Option("rate", int, min=1, unit="Hz"),
    Option("seconds", float, positive=True),
    Option("pattern"),
)


def test_path_options_defaults_and_types():
    path, opts = parse_path_options("data/a,b.txt,seq_len=8,seconds=0.5", "text", OPTIONS)
    assert path == Path("data/a,b.txt")  # a comma without '=' stays in the path
    assert opts == {"tokenizer": "word", "seq_len": 8, "seconds": 0.5}  # rate: no default
    _, opts = parse_path_options("x,pattern={a}_{b}.wav,rate=8000", "wav", OPTIONS)
    assert opts["pattern"] == "{a}_{b}.wav" and opts["rate"] == 8000


@pytest.mark.parametrize(
    "arg, message",
    [
        ("x,colour=red", "text: unknown option 'colour'; valid: tokenizer, seq_len"),
        ("x,seq_len=2,seq_len=3", "text: option seq_len given twice"),
        ("x,seq_len=ten", "text: option seq_len must be an integer, got 'ten'"),
        ("x,seq_len=1", "text: option seq_len must be >= 2, got 1"),
        ("x,rate=0", "text: option rate must be >= 1 Hz, got 0"),
        ("x,rate=fast", "text: option rate must be an integer (Hz), got 'fast'"),
        ("x,seconds=-1", "text: option seconds must be > 0"),
        ("x,seconds=nan", "text: option seconds must be finite"),
        ("x,tokenizer=chars", "text: option tokenizer='chars'; choose from word, bpe"),
        (",seq_len=8", "text: needs a path, e.g. 'text:corpus.txt'"),
    ],
)
def test_each_mistake_is_one_line_naming_the_option(arg, message):
    with pytest.raises(ValueError) as e:
        parse_path_options(arg, "text", OPTIONS, example="corpus.txt")
    assert message in str(e.value) and "\n" not in str(e.value)
