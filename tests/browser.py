"""Headless Chromium for tests: screenshots and layout checks of a rendered HTML file.

Uses Debian's `chromium` (installed by .ci/run). Layout facts are read by a small script added
to a copy of the page, which writes its findings into the DOM that `--dump-dom` prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
]
PROBE = """<script>
window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const titles = [...document.querySelectorAll('.paper-title a')].map(a => {
    const r = a.getBoundingClientRect();
    const s = getComputedStyle(a);
    return {text: a.textContent, visible: r.width > 0 && r.height > 0 && r.left >= 0 &&
            r.right <= vw + 1 && s.visibility !== 'hidden' && s.display !== 'none'};
  });
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({viewport: vw, scrollWidth: document.documentElement.scrollWidth, titles});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    """The browser binary; tests skip without it, except in CI where it must be there."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install it: see .ci/run)")
        pytest.skip("chromium is not installed")
    return path


def _run(args: list[str], width: int, height: int) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed: {result.stderr[-500:]}")
    return result.stdout


def screenshot(
    html_file: Path, png: Path, width: int, height: int = 1600, dark: bool = False
) -> None:
    """A PNG of the page at this window size, in light or dark colour scheme."""
    scheme = ["--blink-settings=preferredColorScheme=0"] if dark else []
    _run([*scheme, f"--screenshot={png}", html_file.as_uri()], width, height)


def layout(html: str, width: int) -> dict:
    """Viewport width, document scroll width and each paper title's visibility at this width."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "probe.html"
        page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = _run(["--virtual-time-budget=2000", "--dump-dom", page.as_uri()], width, 900)
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, "the layout probe did not run"
    return json.loads(
        m.group(1)
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
    )
