"""The app opens in a real browser: the router runs, nothing raises, the server stays healthy."""

import harness as H


def test_app_opens_without_exception(server, page):
    H.open_page(page, server.url, page.watcher)
    assert page.watcher.statuses and page.watcher.statuses[-1] == 0, page.watcher.statuses
    assert H.problems(page) == {"exceptions": [], "errors": []}
    assert page.title().startswith("BPTT Explorer") or "BPTT" in page.inner_text("body")
