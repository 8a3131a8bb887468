"""WAV folders: reading by hand-made files, the wav: spec, errors naming the file, FSDD."""

import math
import struct
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from replab.data.base import DataError
from replab.data.wav import fit_length, read_wav, wav_folder

FSDD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fsdd" / "recordings"


def write_pcm16(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> None:
    """A 16-bit PCM WAV written with the standard library (independent of scipy's reader)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def sine(freq: float, rate: int, n: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)


# ------------------------------------------------------------------------------ reading WAVs


def test_pcm16_8bit_stereo_and_float_files_read_to_the_same_scale(tmp_path):
    ints = np.array([0, 16384, -16384, 32767, -32768], dtype=np.int16)
    write_pcm16(tmp_path / "a.wav", ints, 8000)
    rate, x = read_wav(tmp_path / "a.wav")
    assert rate == 8000
    np.testing.assert_allclose(x, ints / 32768.0)

    with wave.open(str(tmp_path / "b.wav"), "wb") as w:  # unsigned 8-bit, 128 is zero
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(11025)
        w.writeframes(bytes([128, 192, 64, 255, 0]))
    rate, x = read_wav(tmp_path / "b.wav")
    assert rate == 11025
    np.testing.assert_allclose(x, [0.0, 0.5, -0.5, 127 / 128, -1.0])

    stereo = np.array([[1000, 3000], [-2000, 0]], dtype=np.int16)  # frames of (left, right)
    write_pcm16(tmp_path / "c.wav", stereo.reshape(-1), 8000, channels=2)
    np.testing.assert_allclose(read_wav(tmp_path / "c.wav")[1], [2000 / 32768, -1000 / 32768])

    wavfile.write(tmp_path / "d.wav", 16000, np.array([0.25, -0.75], dtype=np.float32))
    np.testing.assert_allclose(read_wav(tmp_path / "d.wav")[1], [0.25, -0.75])


def alaw_wav(path: Path) -> None:
    """A well-formed WAV whose format tag is 6 (A-law), which the reader does not support."""
    data = bytes(16)
    fmt = struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"this is not audio at all" * 10), "not a readable WAV file"),
        (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "the file is cut short"),
        (alaw_wav, "not a readable WAV file"),
        (lambda p: write_pcm16(p, np.zeros(0), 8000), "holds no samples"),
        (lambda p: wavfile.write(p, 8000, np.array([0.0, np.nan], np.float32)), "NaN or inf"),
    ],
    ids=["garbage", "truncated", "a-law", "empty", "nan"],
)
def test_corrupt_or_unsupported_files_give_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError) as e:
        read_wav(path)
    text = str(e.value)
    assert str(path) in text and message in text and "\n" not in text


def test_a_file_cut_short_of_what_its_header_declares_is_refused(tmp_path):
    """The file that used to pass: 4,685 frames declared, cut to 300 bytes (78 frames left);
    scipy reads it as 78 frames without a word."""
    path = tmp_path / "cut.wav"
    write_pcm16(path, sine(440, 8000, 4685) * 32767, 8000)
    path.write_bytes(path.read_bytes()[:300])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(wavfile.read(path)[1]) == 128  # what scipy makes of it: no error
    with pytest.raises(DataError) as e:
        read_wav(path)
    assert str(e.value) == (
        f"{path}: its header declares 9,370 bytes of samples but 256 remain (the file is cut short)"
    )
    chunks_only = tmp_path / "header.wav"
    chunks_only.write_bytes(path.read_bytes()[:40])  # the fmt chunk, then nothing
    with pytest.raises(DataError, match="no data chunk within its 40 bytes"):
        read_wav(chunks_only)


def test_a_streamed_file_that_declares_no_length_is_read_to_its_end(tmp_path):
    path = tmp_path / "stream.wav"
    write_pcm16(path, sine(440, 8000, 100) * 32767, 8000)
    raw = bytearray(path.read_bytes())
    raw[40:44] = struct.pack("<I", 0xFFFFFFFF)  # the data chunk's size: "to the end"
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate, w = read_wav(path)
    assert rate == 8000 and len(w) == 100


def test_fit_length_pads_at_the_end_and_keeps_the_centre():
    w = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(w, 8), [1, 2, 3, 4, 5, 0, 0, 0])
    np.testing.assert_array_equal(fit_length(w, 3), [2, 3, 4])
    np.testing.assert_array_equal(fit_length(w, 5), w)


# ------------------------------------------------------------------------------ the wav: spec


def make_corpus(folder: Path, resampled: tuple[int, int, int] | None = None) -> None:
    """digits 0-1 x speakers ann/bob x indices 0-2, each a tone of its own frequency."""
    folder.mkdir(parents=True, exist_ok=True)
    for digit in (0, 1, 10):
        for s, speaker in enumerate(("bob", "ann")):
            for index in range(3):
                freq = 200 + 100 * digit + 30 * s + 7 * index
                rate = 16000 if (digit, s, index) == resampled else 8000
                n = rate // 4 + 100 * index  # 0.25 s and a bit
                samples = np.round(32767 * sine(freq, rate, n)).astype(np.int16)
                write_pcm16(folder / f"{digit}_{speaker}_{index}.wav", samples, rate)


def test_labels_classes_split_and_length_come_from_the_spec(tmp_path):
    make_corpus(tmp_path / "c")
    spec = f"{tmp_path / 'c'},pattern={{digit}}_{{speaker}}_{{index}}.wav,test=index<1,seconds=0.3"
    d = wav_folder(spec)
    assert len(d) == 18 and d.info.shape == (1, 2400) and d.info.kind == "audio"
    assert d.class_names == ["0", "1", "10"]  # the first field, sorted as numbers
    batch = d.get_batch(np.arange(len(d)))
    expected = [int(f.split("_")[0]) for f in d.files]
    assert batch["y"].tolist() == [{0: 0, 1: 1, 10: 2}[v] for v in expected]
    test = d.split("test")
    assert sorted(d.files[i].rsplit("_", 1)[1] for i in test.indices) == ["0.wav"] * 6
    assert len(d.split("train")) == 12
    # 0.25 s clips zero-padded to 0.3 s: samples 2000.. of a 2000-sample file are 0
    first = d.files.index("0_ann_0.wav")
    assert (
        torch.all(batch["x"][first, 0, 2000:] == 0)
        and batch["x"][first, 0, :2000].abs().max() > 0.4
    )

    by_speaker = wav_folder(spec + ",label=speaker")
    assert by_speaker.class_names == ["ann", "bob"]
    assert torch.equal(by_speaker.get_batch(np.arange(18))["x"], batch["x"])
    spk = by_speaker.get_batch(np.arange(18))["y"].tolist()
    assert spk == [0 if "_ann_" in f else 1 for f in d.files]
    held = wav_folder(spec.replace("test=index<1", "test=speaker=ann"))
    assert all("_ann_" in held.files[i] for i in held.split("test").indices)


def test_files_at_another_rate_are_resampled_to_the_common_one(tmp_path):
    make_corpus(tmp_path / "c", resampled=(1, 1, 2))
    d = wav_folder(f"{tmp_path / 'c'},pattern={{digit}}_{{speaker}}_{{index}}.wav,seconds=0.25")
    assert d.sample_rate == 8000  # the most common rate
    got = d.get_batch(np.array([d.files.index("1_ann_2.wav")]))["x"][0, 0].numpy()
    # 4,200 samples at 16 kHz: 2,100 at 8 kHz, of which the central 2,000 are kept
    want = sine(200 + 100 + 30 + 14, 8000, 2100)[50:2050]
    # polyphase filtering: exact away from the edges, up to the 16-bit quantisation
    np.testing.assert_allclose(got[200:-200], want[200:-200], atol=2e-3)
    d16 = wav_folder(f"{tmp_path / 'c'},pattern={{digit}}_{{speaker}}_{{index}}.wav,rate=16000")
    assert d16.sample_rate == 16000 and d16.info.shape == (1, 16000)


@pytest.mark.parametrize(
    "suffix, message",
    [
        (",colour=red", "unknown option 'colour'"),
        (",pattern={digit}_{speaker}_{index}.wav,label=accent", "label 'accent' is not a pattern"),
        (",pattern={digit}-{speaker}.wav", "does not match pattern"),
        (",pattern={digit}_{speaker}_{index}.wav,test=index~1", "must look like FIELD<N"),
        (",pattern={digit}_{speaker}_{index}.wav,test=speaker<1", "compares numbers"),
        (",pattern={digit}_{speaker}_{index}.wav,test=index<9", "selects every file"),
        (",pattern={a}_{a}_{b}.wav", "names a field twice"),
        (",label=digit", "need a pattern="),
        (",rate=fast", "rate must be an integer"),
        (",seconds=0", "seconds must be > 0"),
        (",seconds=1,seconds=2", "given twice"),
    ],
)
def test_bad_specs_give_one_line_data_errors(tmp_path, suffix, message):
    make_corpus(tmp_path / "c")
    with pytest.raises(DataError) as e:
        wav_folder(f"{tmp_path / 'c'}{suffix}")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_or_empty_folders_and_a_corrupt_file_are_named(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        wav_folder(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .wav files"):
        wav_folder(str(tmp_path / "empty"))
    make_corpus(tmp_path / "c")
    (tmp_path / "c" / "1_bob_9.wav").write_bytes(b"RIFF....junk")
    with pytest.raises(DataError, match="1_bob_9.wav: not a readable WAV"):
        wav_folder(str(tmp_path / "c"))


# ------------------------------------------------------------------------------ log-mel


@pytest.mark.skipif(not FSDD.is_dir(), reason="shared/data/fsdd is not present")
def test_fsdd_with_its_own_test_split():
    spec = f"{FSDD},pattern={{digit}}_{{speaker}}_{{index}}.wav,test=index<5,seconds=0.5"
    d = wav_folder(spec)
    assert len(d) == 3000 and d.sample_rate == 8000 and d.info.shape == (1, 4000)
    assert d.class_names == [str(i) for i in range(10)]
    test = d.split("test")
    assert len(test) == 300 and len(d.split("train")) == 2700
    assert all(int(d.files[i].rsplit("_", 1)[1][:-4]) < 5 for i in test.indices)
    speakers = wav_folder(spec + ",label=speaker")
    assert len(speakers.class_names) == 6
    assert math.isclose(float(d.get_batch(np.arange(3))["x"].abs().max()), 1.0, abs_tol=1.0)
