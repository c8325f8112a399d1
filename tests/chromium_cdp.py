"""Open a page in headless Chromium and report what a reader would see: console errors,
images decoded, a screenshot. Speaks the DevTools protocol over ``--remote-debugging-pipe``
(JSON messages separated by NUL bytes on file descriptors 3 and 4), so it needs no websocket
package and no free port.

Used by tests/test_report_view.py and, as a script, to make the screenshot in the docs::

    python tests/chromium_cdp.py page.html screenshot.png [--full-page]
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# every <img>: decoded (or failed), with its natural size; errors from the browser itself
IMAGES_JS = """Promise.all(Array.from(document.images).map(
    (im) => im.decode().then(() => [im.naturalWidth, im.naturalHeight], () => [0, 0])))"""


def find_chromium():
    """The path of a Chromium (or Chrome) binary, from ``$CHROMIUM`` or the PATH, or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    return next((shutil.which(c) for c in CANDIDATES if shutil.which(c)), None)


@dataclass
class Rendered:
    """What the browser made of a page."""

    errors: list = field(default_factory=list)  # console errors, exceptions, failed loads
    images: list = field(default_factory=list)  # (naturalWidth, naturalHeight) per <img>
    title: str = ""
    screenshot: bytes = b""  # PNG
    seconds: float = 0.0


class _Pipe:
    def __init__(self, proc, write_fd, read_fd, deadline):
        self.proc, self.w, self.r, self.deadline = proc, write_fd, read_fd, deadline
        self.buf, self.next_id, self.events = b"", 0, []

    def _message(self):
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit {self.proc.poll()})")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method):
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._message())


def _high_fd(fd):
    """``fd`` moved above 10, so that placing the pipes on 3 and 4 in the child clobbers
    neither of them."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _errors(events):
    out = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a)) for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            out.append("exception: " + str(p.get("exceptionDetails", {}).get("text")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
    return out


def render(page, *, width=1280, height=1600, full_page=True, timeout=60.0, chromium=None):
    """Load ``page`` (a local HTML file) in headless Chromium and return :class:`Rendered`."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium binary (chromium, google-chrome) on the PATH")
    start = time.monotonic()
    to_chrome_r, to_chrome_w = (_high_fd(fd) for fd in os.pipe())
    from_chrome_r, from_chrome_w = (_high_fd(fd) for fd in os.pipe())

    def child_fds():  # the protocol's fixed descriptors: Chromium reads 3, writes 4
        os.dup2(to_chrome_r, 3)
        os.dup2(from_chrome_w, 4)

    with tempfile.TemporaryDirectory(prefix="tsogpu-chromium-") as profile:
        args = [
            chromium,
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        proc = subprocess.Popen(
            args,
            preexec_fn=child_fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(proc, to_chrome_w, from_chrome_r, start + timeout)
        try:
            return _load(pipe, Path(page), width, height, full_page, start)
        finally:
            try:
                pipe.call("Browser.close")
            except (RuntimeError, TimeoutError, OSError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(to_chrome_w)
            os.close(from_chrome_r)


def _load(pipe, page, width, height, full_page, start):
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})
    s = session["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        pipe.call(f"{domain}.enable", session=s)
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=s,
    )
    nav = pipe.call("Page.navigate", {"url": page.resolve().as_uri()}, session=s)
    out = Rendered()
    if nav.get("errorText"):
        out.errors.append(f"navigation: {nav['errorText']}")
    pipe.wait_for("Page.loadEventFired")
    images = pipe.call(
        "Runtime.evaluate",
        {"expression": IMAGES_JS, "awaitPromise": True, "returnByValue": True},
        session=s,
    )
    out.images = [tuple(x) for x in images["result"].get("value", [])]
    title = pipe.call(
        "Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session=s
    )
    out.title = title["result"].get("value", "")
    shot = {"format": "png", "captureBeyondViewport": full_page}
    if full_page:
        size = pipe.call("Page.getLayoutMetrics", session=s)["cssContentSize"]
        shot["clip"] = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
    out.screenshot = base64.b64decode(pipe.call("Page.captureScreenshot", shot, session=s)["data"])
    time.sleep(0.2)  # late console messages
    pipe.call("Runtime.evaluate", {"expression": "0"}, session=s)  # collect what arrived
    out.errors += _errors(pipe.events)
    out.seconds = time.monotonic() - start
    return out


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    r = render(sys.argv[1], full_page="--full-page" in sys.argv)
    Path(sys.argv[2]).write_bytes(r.screenshot)
    print(f"{len(r.images)} images {r.images}, errors {r.errors}, {r.seconds:.1f} s")
    sys.exit(1 if r.errors else 0)
