"""User text in a real browser: a share link's Markdown shows as typed, nothing is fetched.

Uses the server helpers of ``test_app_browser`` (skipped likewise without Chromium).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
from test_app_browser import CHROMIUM, CHROMIUM_ARGS, free_port, streamlit_server, wait_idle

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed")

EVIL = ("[click](https://evil.example/x) ![i](https://evil.example/i.png) **bold** :red[red] _u_ "
        "www.evil.example a@evil.example")


def test_link_markdown_is_shown_as_plain_text(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    requested: list[str] = []
    with streamlit_server(free_port(), tmp_path / "streamlit.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"{url}/?{urlencode({'wind_build_rate': EVIL})}",
                      wait_until="domcontentloaded")
            alert = page.locator('[data-testid="stAlertContentError"]').first
            expect(alert).to_contain_text("wind_build_rate", timeout=90_000)
            wait_idle(page)
            text = alert.inner_text().replace("\u2060", "")  # the invisible word joiners
            assert EVIL in text, text  # every character as typed
            assert alert.locator("a").count() == 0, alert.inner_html()
            assert alert.locator("img").count() == 0
            assert alert.locator("strong, em, span[style]").count() == 0
        finally:
            browser.close()
    assert requested
    assert not [u for u in requested if urlsplit(u).hostname != "127.0.0.1"]
