"""``replab explore RUN [RUN ...]``: look at trained representations in the browser.

A small local web server (the standard library's, on 127.0.0.1 and a free port) serving one
page and a few JSON and PNG routes computed from the runs and a sample of their test data:

- a 2-D map of each run's codes (PCA; t-SNE from scikit-learn; UMAP when umap-learn is
  installed), coloured by the label or any ground-truth factor; a click picks an example and
  shows it with its nearest neighbours in that run's representation;
- for a model with a decoder, a slider per latent (the first ten) that decodes as it moves,
  starting from the picked example's latents, and its latent traversal;
- several runs side by side on the same examples: a pick in one map picks in all.

Every request must carry the random token printed in the URL (compared in constant time), or it
is refused with 403. There is no file serving at all: only the fixed routes below exist, so no
path (``../``, encoded or not) reaches the disk.
"""

from __future__ import annotations

import hmac
import io
import json
import secrets
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import numpy as np
import torch

from replab.config import ConfigError
from replab.data.base import Dataset, GroundTruth
from replab.methods.capabilities import Decoder
from replab.run import Run

SLIDER_LATENTS = 10
TRAVERSAL_STEPS = 7
MAP_METHODS = ("pca", "tsne", "umap")


def _png(images: torch.Tensor, scale: int = 1, columns: int | None = None) -> bytes:
    """PNG bytes of images [n, C, H, W] in [0, 1] laid out in a grid (``columns`` wide)."""
    from PIL import Image

    x = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = x.shape
    columns = columns or n
    rows = -(-n // columns)
    grid = torch.ones(c, rows * h, columns * w)
    for k in range(n):
        r, q = divmod(k, columns)
        grid[:, r * h : (r + 1) * h, q * w : (q + 1) * w] = x[k]
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    picture = Image.fromarray(array[..., 0] if c == 1 else array[..., :3])
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class RunView:
    """One run's codes (and latents, for a decoder) of the explorer's examples."""

    name: str
    run: Run
    codes: np.ndarray
    latents: np.ndarray | None = None
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def model(self):
        return self.run.model


class Explorer:
    """What the page shows, computed once from the runs and ``n`` test examples of ``data``."""

    def __init__(self, runs: list[Run], data: Dataset, n: int = 500, seed: int = 0):
        if data.info.kind != "image":
            raise ConfigError(f"explore shows images; the data are {data.info.kind}")
        for run in runs:
            if not run.has_encoder:
                raise ConfigError(f"{run.dir}: {run.config.method} has no encoder to explore")
            if not run.model.accepts_shape(data.info.shape):
                raise ConfigError(
                    f"{run.dir}: the model takes inputs of shape {run.model.info.shape}, the "
                    f"data are {data.info.shape}"
                )
        test = data.split("test")
        rng = np.random.default_rng(seed)
        self.indices = np.sort(rng.choice(len(test), size=min(n, len(test)), replace=False))
        batch = test.get_batch(self.indices)
        self.x = batch["x"]
        self.colours: dict[str, list] = {}
        if "y" in batch:
            names = data.class_names
            self.colours["label"] = [
                names[int(v)] if names else int(v) for v in batch["y"].tolist()
            ]
        if "factors" in batch and isinstance(data, GroundTruth):
            for j, name in enumerate(data.factor_names):
                self.colours[name] = batch["factors"][:, j].tolist()
        self.views = [self._view(run, i) for i, run in enumerate(runs)]
        self.lock = threading.Lock()  # maps are computed once, on first request

    def _view(self, run: Run, i: int) -> RunView:
        name = f"{i}: {run.dir.name} ({run.config.method})"
        view = RunView(name, run, run.encode(self.x).numpy())
        if isinstance(run.model, Decoder):
            with torch.no_grad():
                x = self.x.to(run.device)
                view.latents = run.model.latents(x).float().cpu().numpy()
                bounds = run.model.latent_range(x)
            if bounds is None:
                d = view.latents.shape[1]
                view.bounds = (np.full(d, -3.0), np.full(d, 3.0))
            else:
                view.bounds = tuple(b.float().cpu().numpy() for b in bounds)
        return view

    # -- what the routes answer -----------------------------------------------------------

    def describe(self) -> dict:
        return {
            "examples": len(self.indices),
            "colour_by": list(self.colours),
            "map_methods": [m for m in MAP_METHODS if m != "umap" or _has_umap()],
            "runs": [
                {
                    "name": v.name,
                    "method": v.run.config.method,
                    "code_dim": int(v.codes.shape[1]),
                    "decoder": v.latents is not None,
                    "sliders": (
                        [
                            [float(v.bounds[0][j]), float(v.bounds[1][j])]
                            for j in range(min(SLIDER_LATENTS, v.latents.shape[1]))
                        ]
                        if v.latents is not None
                        else []
                    ),
                }
                for v in self.views
            ],
        }

    def map(self, run: int, method: str) -> dict:
        view = self._run(run)
        if method not in MAP_METHODS or (method == "umap" and not _has_umap()):
            raise KeyError(f"map method {method!r}")
        with self.lock:
            if method not in view.maps:
                view.maps[method] = _project(view.codes, method)
        xy = view.maps[method]
        return {"xy": np.round(xy.astype(np.float64), 4).tolist(), "colours": self.colours}

    def neighbours(self, run: int, i: int, k: int = 8) -> list[int]:
        codes = self._run(run).codes
        self._example(i)
        d = ((codes - codes[i]) ** 2).sum(1)
        d[i] = np.inf
        return np.argsort(d, kind="stable")[:k].tolist()

    def latents(self, run: int, i: int) -> list[float]:
        view = self._run(run)
        self._example(i)
        if view.latents is None:
            raise KeyError("this run has no decoder")
        return view.latents[i].tolist()

    def example_png(self, i: int) -> bytes:
        return _png(self._example(i)[None], scale=4)

    def decode_png(self, run: int, values: list[float]) -> bytes:
        view = self._run(run)
        if view.latents is None:
            raise KeyError("this run has no decoder")
        if len(values) != view.latents.shape[1]:
            raise KeyError(f"{len(values)} latents given, the model has {view.latents.shape[1]}")
        z = torch.tensor([values], dtype=torch.float32, device=view.run.device)
        with torch.no_grad():
            return _png(view.model.decode(z), scale=4)

    def traversal_png(self, run: int, i: int) -> bytes:
        view = self._run(run)
        z0 = torch.tensor(self.latents(run, i), dtype=torch.float32)
        rows = []
        for j in range(min(SLIDER_LATENTS, len(z0))):
            lo, hi = view.bounds[0][j], view.bounds[1][j]
            zs = z0.repeat(TRAVERSAL_STEPS, 1)
            zs[:, j] = torch.linspace(float(lo), float(hi), TRAVERSAL_STEPS)
            with torch.no_grad():
                rows.append(view.model.decode(zs.to(view.run.device)).cpu())
        return _png(torch.cat(rows), scale=2, columns=TRAVERSAL_STEPS)

    def _run(self, run: int) -> RunView:
        if not 0 <= run < len(self.views):
            raise KeyError(f"run {run}")
        return self.views[run]

    def _example(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self.indices):
            raise KeyError(f"example {i}")
        return self.x[i]


def _has_umap() -> bool:
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def _project(codes: np.ndarray, method: str) -> np.ndarray:
    """2-D coordinates of ``codes``, scaled into [0, 1] on each axis."""
    if codes.shape[1] < 2:
        xy = np.column_stack([codes[:, 0], np.zeros(len(codes))])
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=0).fit_transform(codes)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(codes) - 1) / 3))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0)
        xy = xy.fit_transform(codes)
    else:
        import umap

        xy = umap.UMAP(n_components=2, random_state=0).fit_transform(codes)
    lo, hi = xy.min(0), xy.max(0)
    return (xy - lo) / np.where(hi > lo, hi - lo, 1.0)


def _page() -> bytes:
    return resources.files("replab.report").joinpath("explorer.html").read_bytes()


def make_server(explorer: Explorer, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """A server on 127.0.0.1 (``port`` 0: a free one) and its URL with the token."""
    token = secrets.token_urlsafe(18)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the terminal shows the URL only
            return None

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value) -> None:
            self._send(200, json.dumps(value).encode(), "application/json")

        def do_GET(self):  # noqa: N802 - the standard library's name
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if not hmac.compare_digest(query.get("token", "").encode(), token.encode()):
                return self._send(403, b"forbidden: this page needs its token\n", "text/plain")
            try:
                run, i = int(query.get("run", 0)), int(query.get("i", 0))
                if url.path == "/":
                    return self._send(200, _page(), "text/html; charset=utf-8")
                if url.path == "/api/describe":
                    return self._json(explorer.describe())
                if url.path == "/api/map":
                    return self._json(explorer.map(run, query.get("method", "pca")))
                if url.path == "/api/neighbours":
                    return self._json(explorer.neighbours(run, i))
                if url.path == "/api/latents":
                    return self._json(explorer.latents(run, i))
                if url.path == "/api/example.png":
                    return self._send(200, explorer.example_png(i), "image/png")
                if url.path == "/api/decode.png":
                    z = [float(v) for v in query.get("z", "").split(",") if v]
                    return self._send(200, explorer.decode_png(run, z), "image/png")
                if url.path == "/api/traversal.png":
                    return self._send(200, explorer.traversal_png(run, i), "image/png")
            except (KeyError, ValueError) as e:
                return self._send(400, f"bad request: {e}\n".encode(), "text/plain")
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server, f"http://127.0.0.1:{server.server_address[1]}/?token={token}"
