"""report.html opened by a real browser (headless Chromium), from disk with no network.

Skipped when Chromium is not installed, unless PYTEST_ABLATION_REQUIRE_CHROMIUM=1 (as in
CI), where a missing browser fails instead of silently testing nothing.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_ablation.report.html import write_html

from .conftest import add_previews, parse_html, synthetic_report

pytestmark = pytest.mark.slow

_PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    images: images.length,
    loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    tables: document.querySelectorAll("table.results").length
  });
  document.body.appendChild(probe);
});
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if os.path.exists(path):
        return path
    reason = "Chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("PYTEST_ABLATION_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason}, and PYTEST_ABLATION_REQUIRE_CHROMIUM=1 requires it")
    pytest.skip(reason)


def run_chromium(chromium: str, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    profile = workdir / "profile"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    # HOME points into the test folder so that the browser writes nothing to the user's.
    env = {**os.environ, "HOME": str(workdir)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def written_report(tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("reports")
    report = add_previews(synthetic_report(), report_dir)
    return write_html(report, report_dir / "report.html", media_root=report_dir)


def test_page_renders_with_content(chromium, written_report, tmp_path):
    screenshot = tmp_path / "page.png"
    run_chromium(chromium, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000", written_report.as_uri())
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20, "the screenshot is (nearly) uniform: nothing rendered"
    assert (pixels < 200).mean() > 0.03, "the screenshot is almost all white"


def test_every_image_loads_in_the_browser(chromium, written_report, tmp_path):
    text = written_report.read_text(encoding="utf-8")
    expected_images = len(list(parse_html(text).iter("img")))
    assert expected_images > 0
    # The page forbids all scripts; the copy under test allows its own inline probe and
    # keeps every other rule, so an image from anywhere but a data URI still fails to load.
    policy = html.escape("default-src 'none'; img-src data:; style-src 'unsafe-inline'")
    assert policy in text
    probed = text.replace(policy, policy + html.escape("; script-src 'unsafe-inline'")).replace(
        "</body>", _PROBE + "\n</body>"
    )
    page = written_report.with_name("probe.html")
    page.write_text(probed, encoding="utf-8")
    result = run_chromium(
        chromium,
        tmp_path,
        "--dump-dom",
        "--virtual-time-budget=10000",
        "--run-all-compositor-stages-before-draw",
        page.as_uri(),
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the probe did not run; DOM tail: {result.stdout[-500:]}"
    probe = json.loads(html.unescape(match.group(1)))
    assert probe == {"images": expected_images, "loaded": expected_images, "tables": 2}
