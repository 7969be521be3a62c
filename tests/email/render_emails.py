"""Render every email template from the sample notices, and screenshot each HTML body with headless Chromium.

Run it with `make render-emails`, or `python tests/email/render_emails.py [--out DIR] [--chromium PATH]`.
For each sample notice in tests/email/notices/ it writes KIND.html, KIND.txt and KIND.png, so that a person can
look at every email the way a mail client shows it. Chromium opens only these local files: background
networking, component updates and sync are off, and every host name resolves to nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from shared.notices import Notice  # noqa: E402 - needs the repository root on sys.path
from shared.email.render import render_notice  # noqa: E402

NOTICES = Path(__file__).parent / "notices"
# Wide enough for the 600-pixel email and its margins, the width of a mail client's reading pane.
WINDOW_WIDTH = 680
# Tall enough for the longest email (a CSR with its steps and PEM block) without cutting it.
WINDOW_HEIGHT = 2000
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    # Any host name fails to resolve, so even a link or image that slipped into a template loads nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
SCREENSHOT_TIMEOUT_SECONDS = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "email-previews",
                        help="Folder for the .html, .txt and .png files (default: build/email-previews).")
    parser.add_argument("--chromium", default="chromium", help="Chromium command (default: chromium).")
    args = parser.parse_args(argv)

    chromium = shutil.which(args.chromium)
    if chromium is None:
        print(f"{args.chromium} is not installed. Run `make render-emails`, which installs it.", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(NOTICES.glob("*.json")):
        html_path = write_bodies(path, args.out)
        screenshot(chromium, html_path, html_path.with_suffix(".png"))
        print(f"{html_path.with_suffix('.png')}")
    return 0


def write_bodies(notice_path: Path, out: Path) -> Path:
    """Render one sample notice; write its HTML and text bodies and return the HTML file's path."""
    email = render_notice(Notice.from_json(notice_path.read_text(encoding="utf-8")))
    html_path = out / f"{notice_path.stem}.html"
    html_path.write_text(email.html, encoding="utf-8")
    (out / f"{notice_path.stem}.txt").write_text(f"Subject: {email.subject}\n\n{email.plain_text}", encoding="utf-8")
    return html_path


def screenshot(chromium: str, html_path: Path, png_path: Path) -> None:
    """Screenshot a local HTML file with headless Chromium and a throwaway profile."""
    with tempfile.TemporaryDirectory(prefix="render-emails-") as profile:
        command = [
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
            f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}", f"--screenshot={png_path}",
            html_path.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=SCREENSHOT_TIMEOUT_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
