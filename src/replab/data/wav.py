"""A folder of WAV files, labels parsed from the file names: ``wav:PATH[,pattern=...]...``.

The spec takes options after the folder, comma-separated ``key=value`` (as ``text:``)::

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

import math
import os
import re
import struct
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from replab.data.audio import AudioDataset
from replab.data.base import DataError
from replab.data.readers import parse_options
from replab.registry import register_dataset
from replab.specs import Option

WAV_OPTIONS = (
    Option("pattern"),
    Option("label"),
    Option("test"),
    Option("rate", int, min=1, unit="Hz"),
    Option("seconds", float, positive=True),
)

# ----------------------------------------------------------------------------------------------
# Reading WAV files


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_wav_chunks(path: Path) -> None:
    """Refuse a WAV file whose RIFF header or data chunk declares more bytes than the file holds:
    scipy reads such a file without a word, as the samples that remain (a cut copy of a 4,685-
    frame file read as 78 frames). The streaming sentinel (0xFFFFFFFF: "to the end") is allowed."""
    with open(path, "rb") as f:
        head = f.read(12)
        size = os.fstat(f.fileno()).st_size
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # not RIFF/WAVE at all: scipy's own error names what is wrong
        order = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack(order + "4sI", f.read(8))
            if chunk == b"data":
                remain = size - pos - 8
                if length != 0xFFFFFFFF and length > remain:
                    raise DataError(
                        f"{path}: its header declares {length:,} bytes of samples but "
                        f"{remain:,} remain (the file is cut short)"
                    )
                return
            pos += 8 + length + (length & 1)  # chunks are padded to an even length
        raise DataError(f"{path}: no data chunk within its {size:,} bytes (the file is cut short)")


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(rate, mono float32 waveform in [-1, 1]) of a WAV file; one-line DataError otherwise."""
    from scipy.io import wavfile

    check_wav_chunks(path)
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

WAV_EXAMPLE = "recordings,pattern={digit}_{id}.wav"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RULE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>|=)\s*(.+)$")


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


@register_dataset("wav", takes_argument=True)
def wav_folder(arg: str) -> AudioDataset:
    """A folder of WAV files, labels from the file names: wav:PATH[,pattern=...,label=...]."""
    folder, opts = parse_options(arg, "wav", WAV_OPTIONS, example=WAV_EXAMPLE)
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

    clips = [read_wav(p) for p in files]
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
