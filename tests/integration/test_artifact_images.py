"""The report's plots in the Prefect UI: a markdown artifact with the PNGs inlined as `data:`
URIs, and a link artifact to the self-contained HTML report, checked in a real server and browser.

The page is driven over Chromium's remote-debugging protocol: navigate, wait until the artifact's
images have rendered, and read every image's `naturalWidth` (0 for an image that did not load).
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.integration import prefect_server as ps
from tests.report.test_viz import fill_warehouse

pytestmark = pytest.mark.integration

_IMAGES = ("JSON.stringify(Array.from(document.images).filter(i => i.src.startsWith('data:'))"
           ".map(i => ({w: i.naturalWidth, ok: i.complete})))")


def images_in_page(url: str, tmp, expected: int, timeout: float = 120) -> list[dict]:
    """Open `url` in headless Chromium and poll until `expected` data-URI images have loaded (or time out)."""
    from websockets.sync.client import connect

    port = ps.free_port()
    profile = tmp / "cdp-profile"
    cmd = [ps.chromium_binary(), *ps.CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
           "--window-size=1400,2000", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True, env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                         if t["type"] == "page"]
                if pages:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromium's remote debugging did not answer")
            time.sleep(0.5)
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            ids = iter(range(1, 10_000))

            def call(method: str, **params) -> dict:
                n = next(ids)
                ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv(timeout=60))
                    if msg.get("id") == n:
                        return msg.get("result", {})

            call("Page.navigate", url=url)
            imgs: list[dict] = []
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                res = call("Runtime.evaluate", expression=_IMAGES, returnByValue=True)
                imgs = json.loads(res.get("result", {}).get("value") or "[]")
                if len(imgs) >= expected and all(i["ok"] and i["w"] > 0 for i in imgs):
                    break
                time.sleep(1)
            return imgs
    finally:
        ps.stop_process(proc)


def test_the_plots_show_in_the_prefect_ui(tmp_path):
    if ps.chromium_binary() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from prefect.artifacts import create_link_artifact, create_markdown_artifact
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from mixopt.report import build_report
    from mixopt.tasks.report import plots_markdown

    with fill_warehouse(tmp_path / "w.duckdb") as wh:
        rep = build_report(wh, "e", tmp_path / "out")
    server = ps.start_server(tmp_path / "prefect")
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            plots = create_markdown_artifact(key="mixopt-plots", markdown=plots_markdown(rep))
            link = create_link_artifact(key="mixopt-report-html", link=rep.html.resolve().as_uri())
        imgs = images_in_page(f"{server.url}/artifacts/artifact/{plots}", tmp_path, len(rep.plots))
        assert len(imgs) == len(rep.plots) >= 3, imgs
        assert all(i["ok"] and i["w"] > 0 for i in imgs), imgs
        page = ps.chromium(f"{server.url}/artifacts/artifact/{link}", tmp_path, "--dump-dom", budget_ms=20_000)
        assert rep.html.resolve().as_uri() in page  # the link to report.html is on the artifact's page
    finally:
        server.stop()
