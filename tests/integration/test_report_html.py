"""The self-contained HTML report in a real browser: headless Chromium loads every image."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.integration import prefect_server as ps
from tests.report.test_viz import fill_warehouse

pytestmark = pytest.mark.integration

_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images).map(i => ({src: i.src.slice(0, 22), w: i.naturalWidth, ok: i.complete}));
  const out = document.createElement('pre'); out.id = 'probe'; out.textContent = JSON.stringify(imgs);
  document.body.appendChild(out);
});
</script>"""


def loaded_images(html_path, tmp_path) -> list[dict]:
    """Open `html_path` alone (copied to an empty folder, so nothing but the page itself can supply
    an image) in headless Chromium; the page's script reports each image's naturalWidth."""
    alone = tmp_path / "alone"
    alone.mkdir()
    page = alone / "report.html"
    shutil.copy(html_path, page)
    page.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    dom = ps.chromium(page.as_uri(), tmp_path, "--dump-dom", "--allow-file-access-from-files", budget_ms=10_000)
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_every_image_of_the_html_report_loads_in_chromium(tmp_path):
    if ps.chromium_binary() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from mixopt.report import build_report

    with fill_warehouse(tmp_path / "w.duckdb") as wh:
        rep = build_report(wh, "e", tmp_path / "out")
    imgs = loaded_images(rep.html, tmp_path)
    assert len(imgs) == len(rep.plots) >= 3
    assert all(i["src"].startswith("data:image/png") and i["ok"] and i["w"] > 0 for i in imgs), imgs
