#!/usr/bin/env python3
"""Load a page in headless Chromium (Debian's /usr/bin/chromium) and check every <img> loaded.

  scripts/check/browser_check.py demo-out/index.html --screenshot target/browser-check/demo.png

The page carries a small script (scripts/demo/demo_page.py, CHECK_SCRIPT) that, after the load
event, writes into the DOM which pictures have naturalWidth 0 and the page's height;
`chromium --dump-dom` prints that DOM. This script counts the <img> tags in the HTML file
itself and fails unless the browser reports the same number, none failed. Then it saves a
screenshot of the whole page (window as tall as the page, up to 16,000 px).
Each run uses a fresh, empty profile and no network services of the browser.
"""
import argparse
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]
WIDTH, MAX_HEIGHT = 1280, 16000


class ImgCounter(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.count = 0

    def handle_starttag(self, tag, attrs):
        self.count += tag == "img"


def chromium(browser, url, *extra, timeout=120):
    with tempfile.TemporaryDirectory(prefix="browser-check-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page")
    ap.add_argument("--screenshot", required=True, help="PNG to write")
    ap.add_argument("--browser", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    a = ap.parse_args()
    page = Path(a.page).resolve()
    counter = ImgCounter()
    counter.feed(page.read_text(encoding="utf-8"))
    expected = counter.count
    url = page.as_uri()
    started = time.monotonic()

    # Measured at the screenshot's width (the default window is narrower, so the page taller).
    run = chromium(a.browser, url, "--dump-dom", f"--window-size={WIDTH},800")
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', run.stdout, re.S)
    if run.returncode != 0 or not found:
        sys.exit(f"browser check: FAILED, no result from the page's check script (chromium exit {run.returncode})\n"
                 f"{run.stderr[-2000:]}")
    result = json.loads(html.unescape(found.group(1)))
    problems = [f"did not load: {src}" for src in result["failed"]]
    if result["images"] != expected:
        problems.append(f"the HTML has {expected} <img> tags, the browser saw {result['images']}")
    if expected == 0:
        problems.append("the page has no <img> at all")

    shot = Path(a.screenshot).resolve()
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    height = max(600, min(MAX_HEIGHT, int(result.get("height", 0)) + 120))  # + the result line itself
    run = chromium(a.browser, url, f"--screenshot={shot}", f"--window-size={WIDTH},{height}")
    if not shot.exists() or shot.stat().st_size == 0:
        problems.append(f"no screenshot written (chromium exit {run.returncode}): {run.stderr[-500:]}")

    took = time.monotonic() - started
    if problems:
        print(f"browser check: FAILED, {len(result['failed'])} of {result['images']} images did not load "
              f"({took:.1f}s; screenshot {shot})")
        for p in problems:
            print(f"  {p}")
        sys.exit(1)
    print(f"browser check: ok, all {expected} images loaded (naturalWidth > 0) in Chromium; "
          f"screenshot {shot} ({WIDTH}x{height}); {took:.1f}s")


if __name__ == "__main__":
    main()
