"""The two invented languages: their dictionary, word orders, and that they are not parallel."""

from replab.data import make_dataset
from replab.data.bilingual import bilingual_dictionary, bilingual_text, dictionary_files


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
    assert len(train) == 60 and len(test) == 140 and not set(train) & set(test)
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
