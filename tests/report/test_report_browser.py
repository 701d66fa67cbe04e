"""The report in real headless Chromium, driven over the DevTools protocol (pipe transport,
so no websocket client is needed): no console errors, no network fetches, every <img>
decoded (naturalWidth > 0), and a screenshot that is not blank."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import shutil
import subprocess
import time

import pytest

from shopml.report import write_report
from shopml.runs import save_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`make browser` or apt-get install chromium)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe", "--window-size=1280,2000"]


class DevTools:
    """Minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fds 3 and 4,
    NUL-terminated JSON messages)."""

    def __init__(self, profile):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # Park the child's ends above 3/4 so the dup2 calls below cannot clobber each other.
        high_r, high_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (to_chrome_r, from_chrome_w))
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def fds():  # chromium reads commands on fd 3 and writes replies on fd 4
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=fds, pass_fds=(3, 4, high_r, high_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(high_r)
        os.close(high_w)
        self._buf, self._id, self.events = b"", 0, []

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            if time.time() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, session=None, timeout=30, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        while not any(e.get("method") == name for e in self.events):
            self.events.append(self._read_message(deadline))

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self._r)
        os.close(self._w)


def load_in_chromium(page_path, profile) -> dict:
    """Open ``page_path`` and return console errors, requests, image sizes and a screenshot."""
    dt = DevTools(profile)
    try:
        target = dt.call("Target.createTarget", url="about:blank")["targetId"]
        s = dt.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ["Runtime", "Log", "Page", "Network"]:
            dt.call(f"{domain}.enable", session=s)
        dt.call("Page.navigate", session=s, url=page_path.resolve().as_uri())
        dt.wait_event("Page.loadEventFired")
        expr = "JSON.stringify(Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]))"
        images = json.loads(dt.call("Runtime.evaluate", session=s, expression=expr, returnByValue=True)["result"]["value"])
        shot = dt.call("Page.captureScreenshot", session=s, format="png", captureBeyondViewport=True)["data"]
    finally:
        dt.close()
    errors = [e for e in dt.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
    urls = [e["params"]["request"]["url"] for e in dt.events if e.get("method") == "Network.requestWillBeSent"]
    return {"errors": errors, "urls": urls, "images": images, "screenshot": base64.b64decode(shot)}


def _is_blank(png: bytes) -> bool:
    import matplotlib.image as mpimg

    px = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    non_white = (px < 0.95).any(axis=-1).mean()
    return px.std() < 0.01 or non_white < 0.01


def test_report_renders_in_headless_chromium(tmp_path):
    from importlib import util

    spec = util.spec_from_file_location("report_material", os.path.join(os.path.dirname(__file__), "test_report.py"))
    material = util.module_from_spec(spec)
    spec.loader.exec_module(material)  # reuse the fake run material (no import between test modules)
    run = save_run(tmp_path / "run", components={}, key=bytes(32), **material.synthetic_report_material())
    page = write_report(run, tmp_path / "report.html")
    result = load_in_chromium(page, tmp_path / "profile")
    (tmp_path / "shot.png").write_bytes(result["screenshot"])
    if os.environ.get("SHOPML_KEEP_SCREENSHOT"):
        shutil.copy(tmp_path / "shot.png", os.environ["SHOPML_KEEP_SCREENSHOT"])
    assert result["errors"] == []
    assert all(u.startswith(("file:", "data:")) for u in result["urls"]), result["urls"]
    assert len(result["images"]) >= 6
    assert all(complete and width > 0 for _, complete, width in result["images"]), result["images"]
    assert not _is_blank(result["screenshot"])
