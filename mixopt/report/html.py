"""The report as one self-contained HTML page: the markdown rendered, every image inlined as a
`data:` URI, so the file can be mailed, attached or opened anywhere without its folder."""

from __future__ import annotations

import base64
import html
import os
import re
import sys
from pathlib import Path

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}code{background:#f6f6f6;padding:0 3px}"""

_IMG = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')


def data_uri(path: Path) -> str:
    """A PNG (or other image) file as a `data:` URI."""
    kind = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(
        path.suffix.lower(), "application/octet-stream")
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def inline_images(markdown_text: str, folder: Path) -> str:
    """The markdown with every `![alt](file)` that exists in `folder` replaced by its data URI (what the
    Prefect UI's markdown artifact can show without a file server)."""
    def sub(m: re.Match) -> str:
        p = folder / m.group(2)
        return f"![{m.group(1)}]({data_uri(p)})" if p.is_file() else m.group(0)

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", sub, markdown_text)


def render_html(markdown_text: str, folder: Path, title: str = "mixopt report") -> str:
    """The markdown as a full HTML page, images from `folder` inlined."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])

    def sub(m: re.Match) -> str:
        p = folder / html.unescape(m.group(2))
        return m.group(1) + (data_uri(p) if p.is_file() else m.group(2)) + m.group(3)

    body = _IMG.sub(sub, body)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")


def write_html(markdown_text: str, path: Path, title: str = "mixopt report") -> Path:
    """Write the self-contained page next to the markdown (images read from `path`'s folder)."""
    path.write_text(render_html(markdown_text, path.parent, title), encoding="utf-8")
    return path


def can_open_browser() -> bool:
    """Whether a graphical browser can plausibly be opened (never on a headless Linux box)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_in_browser(path: Path) -> bool:
    """Open the page in the default browser when one is available; False (and nothing else) otherwise."""
    if not can_open_browser():
        return False
    import webbrowser

    try:
        return bool(webbrowser.open(path.resolve().as_uri()))
    except Exception:  # a broken browser setup must not fail the report
        return False
