"""replab explore: its routes against direct computations, its token and its refusal of every
path outside them, a clean stop on Ctrl-C, and (where Chromium is installed) the page itself,
driven over the DevTools protocol."""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from replab.data import make_dataset
from replab.methods import configure
from replab.report.explorer import Explorer, make_server
from replab.run import load
from replab.training.loop import train

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
FEW = {"train.steps": 3, "train.batch_size": 8}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    data = make_dataset("sprites")
    for method in ("beta_vae", "rotation"):
        train(configure(method, "sprites", overrides=FEW), data, root / method, progress=False)
    return root


@pytest.fixture(scope="module")
def served(runs):
    explorer = Explorer([load(runs / "beta_vae", "cpu"), load(runs / "rotation", "cpu")],
                        make_dataset("sprites"), n=60)  # fmt: skip
    server, url = make_server(explorer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield explorer, url
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def route(url: str, path: str, **params) -> str:
    base, token = url.split("/?token=")
    query = "&".join(f"{k}={v}" for k, v in {"token": token, **params}.items())
    return f"{base}{path}?{query}"


def test_the_routes_answer_what_the_runs_compute(served):
    explorer, url = served
    status, body = get(route(url, "/api/describe"))
    info = json.loads(body)
    assert status == 200 and info["examples"] == 60
    assert [r["decoder"] for r in info["runs"]] == [True, False]
    assert len(info["runs"][0]["sliders"]) == 10 and info["runs"][1]["sliders"] == []
    assert info["colour_by"] == ["label", "shape", "scale", "orientation", "pos_x", "pos_y"]
    # neighbours: the nearest codes by Euclidean distance, computed here from encode
    codes = explorer.views[1].run.encode(explorer.x).numpy()
    d = ((codes - codes[7]) ** 2).sum(1)
    d[7] = np.inf
    _, body = get(route(url, "/api/neighbours", run=1, i=7))
    assert json.loads(body) == np.argsort(d, kind="stable")[:8].tolist()
    # the map: PCA of the codes, scaled to [0, 1]
    _, body = get(route(url, "/api/map", run=1, method="pca"))
    xy = np.array(json.loads(body)["xy"])
    assert xy.shape == (60, 2) and xy.min() == 0 and xy.max() == 1
    # decoding: the PNG of decode(z) for the latents given
    _, body = get(route(url, "/api/latents", run=0, i=3))
    z = json.loads(body)
    model = explorer.views[0].model
    with torch.no_grad():
        assert np.allclose(z, model.latents(explorer.x[3:4])[0].numpy(), atol=1e-6)
    moved = [*z[:2], z[2] + 2.5, *z[3:]]
    plain = get(route(url, "/api/decode.png", run=0, z=",".join(map(str, z))))
    turned = get(route(url, "/api/decode.png", run=0, z=",".join(map(str, moved))))
    assert plain[0] == turned[0] == 200 and plain[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert plain[1] != turned[1]
    status, body = get(route(url, "/api/decode.png", run=1, z="0,1"))
    assert status == 400 and b"no decoder" in body


@pytest.mark.parametrize(
    "path",
    ["/", "/api/describe", "/api/example.png?i=0"],
)
def test_a_request_without_the_right_token_is_refused(served, path):
    _, url = served
    base, token = url.split("/?token=")
    sep = "&" if "?" in path else "?"
    wrong = token[:-1] + ("y" if token[-1] != "y" else "z")  # one character off, never equal
    for tail in ("", f"{sep}token=", f"{sep}token={wrong}", f"{sep}token=%C3%A9"):
        status, body = get(base + path + tail)
        assert status == 403 and b"token" in body, path + tail


@pytest.mark.parametrize(
    "path",
    ["/../config.yaml", "/%2e%2e/config.yaml", "/api/../../config.yaml", "/%2E%2E%2Fconfig.yaml",
     "/..%2f..%2fetc%2fpasswd", "/api/example.png/../../model.safetensors", "//etc/passwd",
     "/config.yaml", "/model.safetensors"],
)  # fmt: skip
def test_no_path_reaches_the_disk(served, path, runs):
    _, url = served
    token = url.split("?token=")[1]
    base = url.split("/?token=")[0]
    request = urllib.request.Request(base + path + f"?token={token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    assert status == 404 and body == b"not found\n"
    assert (runs / "beta_vae" / "config.yaml").read_bytes() not in body


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("started_with", [None, _ignore_sigint], ids=["plain", "sigint-ignored"])
def test_the_command_prints_its_url_and_stops_cleanly_on_ctrl_c(runs, started_with):
    # started with SIGINT ignored, as under nohup or a parent that ignores it (a test runner
    # once did): the command must still stop on Ctrl-C
    proc = subprocess.Popen(
        [sys.executable, "-m", "replab.cli", "explore", str(runs / "beta_vae"), "--examples", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=started_with,
    )  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{20,}", url), url
        assert get(url)[0] == 200
        proc.send_signal(signal.SIGINT)
        # communicate drains both pipes while it waits: a child blocked on a full pipe never exits
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        assert "stopped" in stderr
    finally:
        proc.kill()


def test_bad_explorations_are_refused_in_one_line(runs, tmp_path):
    from typer.testing import CliRunner

    from replab.cli import app

    gan = tmp_path / "gan"
    train(configure("gan", "sprites", overrides=FEW), make_dataset("sprites"), gan, progress=False)
    runner = CliRunner()
    for args, message in [
        ([str(gan)], "gan has no encoder to explore"),
        ([str(runs / "beta_vae"), "--data", "digits"], "the model takes inputs of shape"),
        ([str(runs / "beta_vae"), "--data", "bilingual_a"], "explore shows images"),
    ]:
        r = runner.invoke(app, ["explore", *args])
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ the page itself


class DevTools:
    """A page in headless Chromium, driven over the DevTools protocol (websocket-client)."""

    def __init__(self, profile: Path):
        import websocket

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--window-size=1280,1100", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        browser = None
        deadline = time.time() + 30
        while browser is None and time.time() < deadline:
            line = self.proc.stderr.readline()
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            browser = found.group(1) if found else None
        assert browser, "chromium did not open its DevTools port"
        port = re.search(r":(\d+)/", browser).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result", {})

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)  # fmt: skip
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")

    def close(self):
        self.ws.close()
        self.proc.kill()
        self.proc.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_the_page_decodes_as_a_slider_moves_and_shows_neighbours_of_a_click(served, tmp_path):
    pytest.importorskip("websocket", reason="websocket-client (the dev extra)")
    explorer, url = served
    page = DevTools(tmp_path / "profile")
    try:
        page.call("Page.navigate", url=url)
        page.wait_for("document.body && document.body.dataset.ready === 'yes'")
        image = "document.getElementById('decoded-0')"
        page.wait_for(f"{image}.complete && {image}.naturalWidth > 0")
        before = page.js(f"{image}.src")
        pixels = (
            f"(() => {{ const c = document.createElement('canvas'); const i = {image};"
            " c.width = i.naturalWidth; c.height = i.naturalHeight;"
            " const x = c.getContext('2d'); x.drawImage(i, 0, 0);"
            " return Array.from(x.getImageData(0, 0, c.width, c.height).data).join(','); })()"
        )
        drawn = page.js(pixels)
        # move slider z2 to its far end, as a user drags it
        page.js("(() => { const s = document.getElementById('slider-0-2'); s.value = s.max;"
                " s.dispatchEvent(new Event('input')); })()")  # fmt: skip
        page.wait_for(f"{image}.src !== {json.dumps(before)} && {image}.complete")
        page.wait_for(f"{pixels} !== {json.dumps(drawn)}")
        # click the map where example 17 is drawn: its neighbours appear, the ones computed
        # here from the run's codes
        k = 17
        box = page.js("(() => { const r = document.getElementById('map-1').getBoundingClientRect();"
                      " return [r.left, r.top, r.width, r.height]; })()")  # fmt: skip
        xy = explorer.map(1, "pca")["xy"][k]
        x = box[0] + 8 + xy[0] * (box[2] - 16)
        y = box[1] + 8 + xy[1] * (box[3] - 16)
        for kind in ("mousePressed", "mouseReleased"):
            page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)  # fmt: skip
        shown = (
            "Array.from(document.getElementById('neighbours-1').children)"
            ".map(e => +e.dataset.example)"
        )
        codes = explorer.views[1].codes
        d = ((codes - codes[k]) ** 2).sum(1)
        d[k] = np.inf
        expected = np.argsort(d, kind="stable")[:8].tolist()
        wanted = json.dumps(json.dumps(expected, separators=(",", ":")))
        page.wait_for(f"JSON.stringify({shown}) === {wanted}")
        # the same example is picked in the other run's panel too
        page.wait_for(f"document.getElementById('picked-0').src.includes('?i={k}&')")
        # a request from the page without its token is refused
        assert page.js("fetch('/api/describe').then(r => r.status)") == 403
        shot = page.call("Page.captureScreenshot", format="png")["data"]
        target = os.environ.get("REPLAB_EXPLORER_SCREENSHOT")
        (Path(target) if target else tmp_path / "explorer.png").write_bytes(base64.b64decode(shot))
    finally:
        page.close()
