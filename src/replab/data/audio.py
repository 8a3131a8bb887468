"""Audio data: a folder of WAV files (``wav:``) and procedural ``tones`` with known factors.

Every example is ``{"x": float32 [1, L]}`` (a mono waveform in [-1, 1] at the data set's
``sample_rate``), with ``"y"`` when a label is known; ``DataInfo(kind="audio", shape=(1, L))``.
The protocol's raw-input baseline for audio is a log-mel spectrogram averaged over time
(``raw_baseline_name = "log_mel"``, see :func:`log_mel`).

The ``wav:`` spec takes options after the folder, comma-separated ``key=value`` (as ``text:``)::

    wav:PATH[,pattern=P][,label=FIELD][,test=RULE][,rate=HZ][,seconds=S]

- ``pattern``: the files' paths relative to PATH, with ``{field}`` placeholders, e.g.
  ``{digit}_{speaker}_{index}.wav`` or ``{speaker}/{digit}_{index}.wav``; a field matches any
  text without ``/``. Every ``*.wav`` file under PATH (recursively, hidden ones skipped) must
  match it. Without a pattern the files carry no labels.
- ``label``: the field used as the label ``y`` (default: the pattern's first field). Its
  classes are its values sorted (as numbers when all values are integers).
- ``test``: which files form the test split, ``FIELD<N`` (also ``<=``, ``>``, ``>=``; the field
  read as an integer) or ``FIELD=V1|V2`` (the field's text). Without it: the deterministic
  random 10% of every data set.
- ``rate``: the common sampling rate in Hz; files at another rate are resampled
  (``scipy.signal.resample_poly``). Default: the most common rate among the files.
- ``seconds``: the fixed length of every example (default 1.0). Shorter clips start at 0 and
  are zero-padded at the end; longer ones keep their central part.

The Free Spoken Digit Dataset with its own test split (indices 0-4), once per label::

    wav:recordings,pattern={digit}_{speaker}_{index}.wav,label=digit,test=index<5
    wav:recordings,pattern={digit}_{speaker}_{index}.wav,label=speaker,test=index<5

Both give the same inputs in the same order, so a run trained on one is evaluated on the other
(``replab eval RUN --data ...``). WAVs are read with ``scipy.io.wavfile`` (PCM 8/16/24/32-bit
and IEEE float, any channel count, mixed down to mono); a corrupt, empty or unsupported file
stops with one line naming it.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from replab.data.base import (
    DataError,
    DataInfo,
    GroundTruthDataset,
    InMemoryDataset,
)
from replab.registry import register_dataset

# ----------------------------------------------------------------------------------------------
# The raw-input baseline: a time-averaged log-mel spectrogram

N_MELS = 40
WINDOW_S = 0.025  # 25 ms Hann windows every 10 ms (the usual speech front end)
HOP_S = 0.010
LOG_FLOOR = 1e-6


def hz_to_mel(f):
    """HTK's mel scale: m = 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular filters [n_mels, n_fft // 2 + 1] on the HTK mel scale from 0 Hz to Nyquist.

    Filter m rises linearly from the (m-1)-th to the m-th of n_mels + 2 points equally spaced in
    mel and falls to the (m+1)-th, peaking at 1 (HTK's unnormalised triangles).
    """
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2.0), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs - lo) / (mid - lo)
    fall = (hi - freqs) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None)


def log_mel(x: torch.Tensor, sample_rate: int, n_mels: int = N_MELS) -> torch.Tensor:
    """log(mel power + 1e-6) of waveforms [n, L] or [n, 1, L]: [n, n_mels, frames].

    Power spectrum of 25 ms Hann windows every 10 ms (``torch.stft``, centred, the FFT size the
    next power of two), through :func:`mel_filterbank`.
    """
    x = x.reshape(len(x), -1).float()
    win = max(2, round(WINDOW_S * sample_rate))
    hop = max(1, round(HOP_S * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, dtype=x.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    fb = torch.as_tensor(mel_filterbank(sample_rate, n_fft, n_mels), dtype=x.dtype)
    return torch.log(fb @ spec.abs().square() + LOG_FLOOR)


class AudioFeatures:
    """The protocol's raw baseline for audio: the log-mel spectrogram averaged over time."""

    raw_baseline_name = "log_mel"
    sample_rate: int

    def raw_features(self, x: torch.Tensor) -> np.ndarray:
        out = [log_mel(x[i : i + 256], self.sample_rate).mean(-1) for i in range(0, len(x), 256)]
        return torch.cat(out).numpy()


# ----------------------------------------------------------------------------------------------
# Reading WAV files


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(rate, mono float32 waveform in [-1, 1]) of a WAV file; one-line DataError otherwise."""
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # WavFileWarning on chunks it skips
            rate, data = wavfile.read(path)
    except Exception as e:  # ValueError, EOFError, struct.error, ... from a malformed file
        raise DataError(f"{path}: not a readable WAV file ({_one_line(e)})") from None
    data = np.asarray(data)
    if data.ndim == 0 or data.size == 0 or len(data) == 0:
        raise DataError(f"{path}: holds no samples")
    if rate <= 0:
        raise DataError(f"{path}: sampling rate {rate} Hz is not positive")
    kind = data.dtype
    if kind == np.uint8:
        wave = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(kind, np.signedinteger):
        wave = data.astype(np.float32) / float(2 ** (8 * kind.itemsize - 1))
    elif np.issubdtype(kind, np.floating):
        wave = data.astype(np.float32)
        if not np.isfinite(wave).all():
            raise DataError(f"{path}: float samples contain NaN or inf")
    else:
        raise DataError(f"{path}: unsupported sample type {kind}")
    if wave.ndim == 2:
        wave = wave.mean(1)
    return int(rate), wave


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` at ``rate`` Hz resampled to ``target`` Hz (polyphase, scipy's Kaiser window)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(wave.astype(np.float64), target // g, rate // g).astype(np.float32)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Zero-padded at the end to ``length`` samples, or its central ``length`` samples."""
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start : start + length]
    out = np.zeros(length, dtype=np.float32)
    out[: len(wave)] = wave
    return out


# ----------------------------------------------------------------------------------------------
# The spec: options, file-name patterns, test rules

_WAV_OPTIONS = ("pattern", "label", "test", "rate", "seconds")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RULE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>|=)\s*(.+)$")


def parse_wav_spec(arg: str) -> tuple[Path, dict]:
    """``PATH,key=value,...`` -> (folder, options); one-line DataError for a bad option."""
    parts = arg.split(",")
    opts: dict = {}
    while len(parts) > 1 and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        key = key.strip()
        if key not in _WAV_OPTIONS:
            raise DataError(f"wav: unknown option {key!r}; valid: {', '.join(_WAV_OPTIONS)}")
        if key in opts:
            raise DataError(f"wav: option {key} given twice")
        opts[key] = value.strip()
    path = ",".join(parts).strip()
    if not path:
        raise DataError("wav: needs a folder, e.g. 'wav:recordings,pattern={digit}_{id}.wav'")
    if "rate" in opts:
        try:
            opts["rate"] = int(opts["rate"])
        except ValueError:
            raise DataError(
                f"wav: option rate must be an integer (Hz), got {opts['rate']!r}"
            ) from None
        if opts["rate"] < 1:
            raise DataError(f"wav: option rate must be >= 1 Hz, got {opts['rate']}")
    if "seconds" in opts:
        try:
            opts["seconds"] = float(opts["seconds"])
        except ValueError:
            raise DataError(
                f"wav: option seconds must be a number, got {opts['seconds']!r}"
            ) from None
        if not (opts["seconds"] > 0 and math.isfinite(opts["seconds"])):
            raise DataError(f"wav: option seconds must be > 0, got {opts['seconds']}")
    return Path(path).expanduser(), opts


def compile_pattern(pattern: str) -> tuple[re.Pattern, list[str]]:
    """``{a}_{b}.wav`` -> (a regex matching whole relative paths, the field names in order)."""
    fields = _FIELD.findall(pattern)
    if len(set(fields)) != len(fields):
        raise DataError(f"wav: pattern {pattern!r} names a field twice")
    if "{" in _FIELD.sub("", pattern) or "}" in _FIELD.sub("", pattern):
        raise DataError(f"wav: pattern {pattern!r} has a brace that is not a {{field}}")
    regex, pos = "", 0
    for m in _FIELD.finditer(pattern):
        regex += re.escape(pattern[pos : m.start()]) + f"(?P<{m.group(1)}>[^/]+?)"
        pos = m.end()
    regex += re.escape(pattern[pos:])
    return re.compile(regex + r"\Z"), fields


def split_mask(rule: str, fields: dict[str, list[str]]) -> np.ndarray:
    """Which examples a ``FIELD<N`` / ``FIELD=V1|V2`` rule puts in the test split."""
    m = _RULE.match(rule)
    if not m:
        raise DataError(f"wav: test rule {rule!r} must look like FIELD<N or FIELD=VALUE")
    name, op, value = m.groups()
    if name not in fields:
        raise DataError(f"wav: test rule names {name!r}, not a pattern field ({', '.join(fields)})")
    values = fields[name]
    if op == "=":
        wanted = {v.strip() for v in value.split("|")}
        return np.array([v in wanted for v in values])
    try:
        bound = int(value)
        nums = np.array([int(v) for v in values])
    except ValueError:
        raise DataError(
            f"wav: test rule {rule!r} compares numbers, but {name} has text values"
        ) from None
    return {"<": nums < bound, "<=": nums <= bound, ">": nums > bound, ">=": nums >= bound}[op]


def _sort_key(values: list[str]):
    if all(re.fullmatch(r"[+-]?\d+", v) for v in values):
        return lambda v: (int(v), v)
    return lambda v: v


class AudioDataset(AudioFeatures, InMemoryDataset):
    """Waveforms in memory: x float32 [N, 1, L] at ``sample_rate`` Hz, optional labels."""

    def __init__(
        self,
        x: np.ndarray,
        sample_rate: int,
        y: np.ndarray | None = None,
        *,
        name: str = "audio",
        class_names: list[str] | None = None,
        test_mask: np.ndarray | None = None,
        files: list[str] | None = None,
    ):
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if self.x.ndim == 2:
            self.x = self.x[:, None]
        if self.x.ndim != 3 or len(self.x) == 0:
            raise DataError(f"{name}: expected waveforms [N, 1, L], got {tuple(self.x.shape)}")
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.sample_rate = int(sample_rate)
        self.name = name
        self.class_names = class_names
        self.files = files
        num_classes = (
            None if self.y is None else (len(class_names) if class_names else int(self.y.max()) + 1)
        )
        self.info = DataInfo(shape=tuple(self.x.shape[1:]), num_classes=num_classes, kind="audio")
        self._test_mask = None if test_mask is None else np.asarray(test_mask, dtype=bool)


def _wav_files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise DataError(f"{folder}: no such file or directory")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, expected a folder of WAV files")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() == ".wav"
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise DataError(f"{folder}: folder holds no .wav files")
    return files


def _read_all(files: list[Path]) -> tuple[tuple[int, np.ndarray], ...]:
    """Every file read, through an in-process cache (the command line builds a data set more
    than once per command) keyed by each file's path, size and modification time."""
    key = []
    for p in files:
        try:
            st = p.stat()
        except OSError as e:
            raise DataError(f"{p}: cannot read ({_one_line(e.strerror or e)})") from None
        key.append((str(p), st.st_size, st.st_mtime_ns))
    return _read_cached(tuple(key))


@functools.lru_cache(maxsize=4)
def _read_cached(key: tuple) -> tuple[tuple[int, np.ndarray], ...]:
    return tuple(read_wav(Path(k[0])) for k in key)


@register_dataset("wav", takes_argument=True)
def wav_folder(arg: str) -> AudioDataset:
    """A folder of WAV files, labels from the file names: wav:PATH[,pattern=...,label=...]."""
    folder, opts = parse_wav_spec(arg)
    files = _wav_files(folder)
    rel = [p.relative_to(folder).as_posix() for p in files]
    fields: dict[str, list[str]] = {}
    label = opts.get("label")
    if "pattern" in opts:
        regex, names = compile_pattern(opts["pattern"])
        if not names and label:
            raise DataError(f"wav: label={label} but the pattern has no {{field}}")
        fields = {n: [] for n in names}
        for r, p in zip(rel, files, strict=True):
            m = regex.match(r)
            if m is None:
                raise DataError(f"{p}: file name does not match pattern {opts['pattern']!r}")
            for n in names:
                fields[n].append(m.group(n))
        label = label or (names[0] if names else None)
    elif label or "test" in opts:
        raise DataError("wav: label= and test= need a pattern=, e.g. pattern={digit}_{id}.wav")
    if label is not None and label not in fields:
        raise DataError(f"wav: label {label!r} is not a pattern field ({', '.join(fields)})")

    clips = _read_all(files)
    rates = [r for r, _ in clips]
    rate = opts.get("rate") or Counter(rates).most_common(1)[0][0]
    length = max(1, round(opts.get("seconds", 1.0) * rate))
    x = np.stack([fit_length(resample(w, r, rate), length) for r, w in clips])

    y = class_names = None
    if label is not None:
        values = fields[label]
        class_names = sorted(set(values), key=_sort_key(values))
        if len(class_names) < 2:
            raise DataError(f"{folder}: label {label!r} takes a single value ({class_names[0]})")
        index = {c: i for i, c in enumerate(class_names)}
        y = np.array([index[v] for v in values])
    mask = None
    if "test" in opts:
        mask = split_mask(opts["test"], fields)
        if mask.all() or not mask.any():
            which = "every" if mask.all() else "no"
            raise DataError(f"wav: test rule {opts['test']!r} selects {which} file")
    return AudioDataset(
        x,
        rate,
        y,
        name=f"wav:{folder.name}",
        class_names=class_names,
        test_mask=mask,
        files=rel,
    )


# ----------------------------------------------------------------------------------------------
# Procedural tones with known factors

TONE_RATE = 8000
TONE_SAMPLES = 3840  # 0.48 s: 24 frames of CPC's 160x down-sampling, 8 per vowel
PITCHES = 110.0 * 2.0 ** (np.arange(12) / 12.0)  # A2 and the 11 semitones above it
TIMBRE_NAMES = ["saw", "square", "mellow", "bright"]
VOWEL_FORMANTS = {  # (F1, F2) in Hz, rounded adult male averages (Peterson and Barney 1952)
    "a": (730.0, 1090.0),
    "e": (530.0, 1840.0),
    "i": (270.0, 2290.0),
    "o": (570.0, 840.0),
    "u": (300.0, 870.0),
}
VOWEL_SEQUENCES = list(itertools.permutations("aeiou", 3))  # 60 ordered triples
FORMANT_BANDWIDTHS = (90.0, 110.0)
CROSSFADE_S = 0.02  # the spectrum moves linearly from one vowel to the next over 20 ms
TONE_RMS = 0.1


def _timbre_weights(timbre: int, n: np.ndarray) -> np.ndarray:
    """Amplitude of harmonic n: saw 1/n, square odd 1/n, mellow 1/n^2, bright 1/sqrt(n)."""
    if timbre == 0:
        return 1.0 / n
    if timbre == 1:
        return np.where(n % 2 == 1, 1.0 / n, 0.0)
    if timbre == 2:
        return 1.0 / n**2
    return 1.0 / np.sqrt(n)


_N_HARMONICS = int((TONE_RATE / 2) // PITCHES[0])  # 36 harmonics of the lowest pitch


@functools.lru_cache(maxsize=1)
def _tone_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sines [pitch, H, T], harmonic amplitudes [pitch, timbre, H], formant gains
    [pitch, vowel, H], vowel weights [3, T]), float64; computed once."""
    t = np.arange(TONE_SAMPLES) / TONE_RATE
    n = np.arange(1, _N_HARMONICS + 1, dtype=np.float64)
    freq = PITCHES[:, None] * n  # [P, H]
    audible = freq < TONE_RATE / 2
    sines = np.sin(2.0 * np.pi * freq[:, :, None] * t) * audible[:, :, None]
    amps = (
        np.stack([_timbre_weights(k, n) for k in range(len(TIMBRE_NAMES))])[None] * audible[:, None]
    )
    formants = np.array([VOWEL_FORMANTS[v] for v in "aeiou"])  # [5, 2]
    gains = sum(
        1.0 / (1.0 + ((freq[:, None, :] - formants[None, :, i, None]) / bw) ** 2)
        for i, bw in enumerate(FORMANT_BANDWIDTHS)
    )  # [P, 5, H]
    seg = TONE_SAMPLES / TONE_RATE / 3.0
    rise2 = np.clip((t - seg) / CROSSFADE_S + 0.5, 0.0, 1.0)
    rise3 = np.clip((t - 2 * seg) / CROSSFADE_S + 0.5, 0.0, 1.0)
    weights = np.stack([1.0 - rise2, rise2 - rise3, rise3])  # [3, T], summing to 1
    return sines, amps, gains, weights


_SEQUENCE_VOWELS = np.array([["aeiou".index(v) for v in s] for s in VOWEL_SEQUENCES])  # [60, 3]


@register_dataset("tones")
class Tones(AudioFeatures, GroundTruthDataset):
    """Procedural vowel-like tones: pitch x timbre x a sequence of three vowels (2,880 clips).

    A clip is a harmonic tone (0.48 s at 8 kHz) of fundamental f0 = ``PITCHES[pitch]``, with the
    amplitudes a_n of its ``timbre`` shaped by the two formant resonances of a vowel,
    ``G_v(f) = sum_i 1 / (1 + ((f - F_i(v)) / B_i)^2)``; three vowels follow each other (a
    third of the clip each), the spectrum crossfading linearly over 20 ms at each change:
    ``x(t) = sum_k w_k(t) sum_n a_n G_{v_k}(n f0) sin(2 pi n f0 t / rate)`` over harmonics below
    4 kHz, scaled to RMS 0.1. Exact and deterministic: the same factors always give the same
    samples. The label is the vowel sequence (the "word"); pitch and timbre play the speaker.
    """

    name = "tones"
    factor_names = ["pitch", "timbre", "vowels"]
    factor_sizes = [len(PITCHES), len(TIMBRE_NAMES), len(VOWEL_SEQUENCES)]
    label_factor = "vowels"
    categorical_factors = ("timbre", "vowels")
    class_names = ["".join(s) for s in VOWEL_SEQUENCES]
    sample_rate = TONE_RATE
    info = DataInfo(shape=(1, TONE_SAMPLES), num_classes=len(VOWEL_SEQUENCES), kind="audio")

    def observations(self, factors, rng=None) -> torch.Tensor:
        """Waveforms float32 [n, 1, 3840] of factor indices [n, 3] (``rng`` unused)."""
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"factors must be integers of shape [n, 3], got {f.dtype} {f.shape}")
        if len(f) and ((f < 0).any() or (f >= np.array(self.factor_sizes)).any()):
            raise ValueError(f"factors out of range; sizes are {self.factor_sizes}")
        sines, amps, gains, weights = _tone_tables()
        out = np.empty((len(f), TONE_SAMPLES), dtype=np.float64)
        for p in np.unique(f[:, 0]):
            rows = np.flatnonzero(f[:, 0] == p)
            vowels = _SEQUENCE_VOWELS[f[rows, 2]]  # [m, 3]
            coef = amps[p, f[rows, 1]][:, None, :] * gains[p, vowels]  # [m, 3, H]
            parts = coef @ sines[p]  # [m, 3, T]: each vowel's steady tone
            out[rows] = np.einsum("mkt,kt->mt", parts, weights)
        out *= TONE_RMS / np.sqrt(np.mean(out**2, axis=1, keepdims=True))
        return torch.from_numpy(out.astype(np.float32)[:, None])
