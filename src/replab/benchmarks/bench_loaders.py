"""Each release-file loader at full size: peak memory, first and later load times, batch rate.

    python -m replab.benchmarks.bench_loaders [--files DIR] [--only dsprites 3dshapes ...]

The files are written first where missing, in the release layouts at full size with made-up
pixels (``release_layouts``: 18 GB, and up to 6 GB of cache at a time, under ``--files``, by
default the replab cache's ``bench-files``). Each loader is then measured in fresh processes
with a cache of its own: the first load (the cache empty: any conversion happens here; the files
dropped from the kernel's page cache with ``posix_fadvise``, as after a download), then a later
one (the cache warm). Each process builds the data set, reads one batch of 64 random images,
then random batches for ``--seconds``; it reports its peak memory held (anonymous pages) beside
that of a process that only imports replab, and apart from it the pages of mapped files it
touched (see PeakMemory). The dSprites file is drawn by replab's renderer, so ``check-sprites``
over its whole grid must find every pixel identical; its time is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from replab.benchmarks.release_layouts import LAYOUTS
from replab.benchmarks.timing import images_per_second

BATCH = 64


class PeakMemory:
    """The most anonymous memory (what the process holds: arrays, decoded copies) and the most
    file-backed resident memory (pages of mapped files it touched: the kernel's page cache,
    dropped under pressure) seen while it runs, sampled every 10 ms from /proc/self/status.
    ``ru_maxrss`` adds the two, so it reads a memory-mapped file touched all over as held."""

    def __init__(self):
        self.anon_mb = self.file_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _sample(self) -> None:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:")):
                mb = int(line.split()[1]) / 1024
                if line.startswith("RssAnon:"):
                    self.anon_mb = max(self.anon_mb, mb)
                else:
                    self.file_mb = max(self.file_mb, mb)

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def measure_in_this_process(spec: str, seconds: float) -> dict:
    """What one fresh process sees: load time, first batch, batch rate, peak memory."""
    import torch

    torch.set_num_threads(1)
    from replab.data import make_dataset

    with PeakMemory() as peak:
        t0 = time.perf_counter()
        data = make_dataset(spec)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data.get_batch(np.random.default_rng(1).integers(0, len(data), BATCH))
        first_batch_s = time.perf_counter() - t0
        median, _ = images_per_second(data, BATCH, seconds)
    return {
        "examples": len(data),
        "load_s": load_s,
        "first_batch_s": first_batch_s,
        "images_per_s": median,
        "peak_anon_mb": peak.anon_mb,
        "peak_file_mb": peak.file_mb,
    }


def _baseline_anon_mb() -> float:
    """Anonymous memory of a process that only imports replab's data layer and torch."""
    code = (
        "import replab.data, torch\n"
        "from replab.benchmarks.bench_loaders import PeakMemory\n"
        "with PeakMemory() as p: pass\n"
        "print(p.anon_mb)"
    )
    return float(subprocess.run([sys.executable, "-c", code], check=True,
                                capture_output=True, text=True).stdout)  # fmt: skip


def _child(spec: str, cache: Path, seconds: float) -> dict:
    env = {**os.environ, "REPLAB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    module = "replab.benchmarks.bench_loaders"
    args = [sys.executable, "-m", module, "--child", spec, "--seconds", str(seconds)]
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{spec}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _evict(path: Path) -> None:
    """Drop a file's (or a folder's files') pages from the kernel's page cache, so that the next
    read comes from the disk, as a first load after a download would."""
    for p in [path] if path.is_file() else (q for q in path.rglob("*") if q.is_file()):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _size_gb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e9
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e9


def _check_sprites(path: Path, cache: Path) -> dict:
    """``replab check-sprites`` over the whole grid, timed (the file's cache already warm)."""
    env = {**os.environ, "REPLAB_CACHE": str(cache)}
    out = path.with_name("check-sprites.json")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "replab.cli", "check-sprites", str(path), "--json",
                    str(out)], env=env, check=True, capture_output=True)  # fmt: skip
    result = json.loads(out.read_text())
    return {
        "seconds": time.perf_counter() - t0,
        "images": result["images"],
        "identical_pixels": result["identical_pixels"],
    }


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s * 1000:.1f} ms"


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    rows = []
    base = r["import_only_anon_mb"]
    for name, m in r["loaders"].items():
        first, later = m["first"], m["later"]
        rows.append(
            (
                f"loader: {name} ({m['examples']:,} examples, {m['file_gb']:.2f} GB of files, "
                f"cache {m['cache_gb']:.2f} GB)",
                f"first load {_seconds(first['load_s'])}, later {_seconds(later['load_s'])}; "
                f"{later['images_per_s']:,.0f} images/s in batches of {BATCH}",
                f"peak memory held {first['peak_anon_mb']:,.0f} MB first, "
                f"{later['peak_anon_mb']:,.0f} MB later (importing replab: {base:,.0f} MB); "
                f"mapped pages touched {later['peak_file_mb']:,.0f} MB",
            )
        )
    if "check_sprites" in r:
        c = r["check_sprites"]
        rows.append(
            (
                f"check-sprites over the whole grid ({c['images']:,} images)",
                f"{c['seconds']:.0f} s",
                f"identical pixels {c['identical_pixels']:.4%} (file drawn by replab)",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    from replab.files import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_files = (cache_dir() or Path.home() / ".cache" / "replab") / "bench-files"
    parser.add_argument("--files", type=Path, default=default_files, help="the full-size files")
    parser.add_argument("--only", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    parser.add_argument("--seconds", type=float, default=3.0, help="time for the batch rate")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_in_this_process(args.child, args.seconds)))
        return {}
    args.files.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "loaders", "batch": BATCH, "import_only_anon_mb": _baseline_anon_mb()}
    result["loaders"] = {}
    for name in args.only:
        where, write, spec = LAYOUTS[name]
        target = args.files / where
        written = args.files / f".{name}.written"  # a folder's writer stops part way: resumed
        if not written.exists():
            t0 = time.perf_counter()
            write(target)
            written.touch()
            print(f"{name}: files written in {time.perf_counter() - t0:.0f} s", flush=True)
        cache = args.files / "caches" / name
        shutil.rmtree(cache, ignore_errors=True)
        _evict(target)
        first = _child(spec.format(target), cache, args.seconds)
        later = _child(spec.format(target), cache, args.seconds)
        entry = {
            "examples": first["examples"],
            "file_gb": _size_gb(target),
            "cache_gb": _size_gb(cache) if cache.exists() else 0.0,
            "first": first,
            "later": later,
        }
        result["loaders"][name] = entry
        print(f"{name}: {json.dumps(entry)}", flush=True)
        if write is LAYOUTS["dsprites"][1]:
            result["check_sprites"] = _check_sprites(target, cache)
            print(f"check-sprites: {json.dumps(result['check_sprites'])}", flush=True)
        shutil.rmtree(cache, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
