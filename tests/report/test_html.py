"""The scorecard's HTML page in headless Chromium (Debian's, driven by Playwright, as
tests/server/test_chat_ui.py drives it): it loads with no request but its own file, shows its
four charts, a thread's link scrolls to its timeline, and the markup a user typed into a
comment stays text. The screenshot goes to the test's directory; with
``STEWARD_REPORT_SHOT=docs/report.png`` it also replaces the README's picture."""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _chat_ui import CHROMIUM, CHROMIUM_ARGS
from _support import CAROL
from _trail import COMMENT, build_trail, runtime

from steward.report import Scorecard, render_html, render_text
from steward.report.fmt import stamp
from steward.report.html import anchor
from steward.report.text import tables

REQUIRED = os.environ.get("STEWARD_REQUIRE_BROWSER") == "1"
WHY_NOT = None if os.access(CHROMIUM, os.X_OK) else (
    f"no Chromium at {CHROMIUM}: apt-get install chromium (or set STEWARD_CHROMIUM)")
CHARTS = ["chart-resolution", "chart-approval-wait", "chart-outcomes", "chart-cost"]


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Scorecard:
    workdir = tmp_path_factory.mktemp("trail")
    url = f"sqlite:///{workdir}/steward.db"
    build_trail(url, workdir)
    with runtime(url) as rt:
        return rt.report(CAROL, timelines=True)


def test_everything_from_the_trail_is_escaped(card: Scorecard) -> None:
    page = render_html(card)
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "default-src 'none'" in page  # and were anything to slip through, nothing loads
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count(f'href="#{anchor("R-approved")}"') == 1
    assert f'id="{anchor("R-approved")}"' in page


def test_the_terminal_and_the_page_show_the_same_tables(card: Scorecard) -> None:
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    render_text(card, Console(file=out, width=1000, markup=False, highlight=False))
    text, page = out.getvalue(), render_html(card)
    shown = tables(card)
    assert {"Interrupted runs", "Other tenants refused", "Approval requests still open"} <= {
        t.title for t in shown}
    for table in shown:
        assert table.title in " ".join(text.split())  # a title wider than its table wraps
        assert f"<h2>{html.escape(table.title)}</h2>" in page
        for row in table.rows:
            for cell in row:
                assert cell in text and html.escape(cell) in page, (table.title, cell)
    assert all(stamp(i.at) in text for i in card.recovery.interruptions)
    assert "eve" in text and "globex" in text  # the other tenant's principal, refused
    scope = "tenant acme; threads started all time; read by carol at"
    assert text.startswith(f"Steward scorecard — {scope}")
    assert html.escape(scope.replace("; ", " · ")) in page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if WHY_NOT is not None:
        if REQUIRED:
            pytest.fail(f"STEWARD_REQUIRE_BROWSER=1, but {WHY_NOT}")
        pytest.skip(f"browser test: {WHY_NOT}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield found
        finally:
            found.close()


def test_the_page_in_chromium(card: Scorecard, browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(card), encoding="utf-8")
    url = path.as_uri()
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    requests: list[str] = []
    dialogs: list[str] = []

    def route(found: Any) -> None:
        requests.append(found.request.url)
        if found.request.url == url:
            found.continue_()
        else:
            found.abort()

    page.route("**/*", route)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_load_state("load")
    assert requests == [url]  # nothing but the file itself, ever
    assert page.locator("script").count() == 0 and dialogs == []

    for chart in CHARTS:  # each chart is drawn, with its bars
        svg = page.locator(f"svg#{chart}")
        assert svg.is_visible(), chart
    assert page.locator("svg#chart-resolution rect").count() >= 1
    assert page.locator("svg#chart-approval-wait rect").count() == 2  # manager, security
    assert page.locator("svg#chart-outcomes rect").count() >= 3  # stacked, with a legend
    assert page.locator("svg#chart-cost rect").count() == 1  # access: the one priced call
    assert page.get_by_text("complete", exact=True).is_visible()

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    target = os.environ.get("STEWARD_REPORT_SHOT")
    if target:
        shutil.copyfile(shot, target)

    section = page.locator(f"section#{anchor('R-approved')}")
    assert not _in_view(page, section)
    page.locator(f'a[href="#{anchor("R-approved")}"]').click()
    page.wait_for_function(f"location.hash === '#{anchor('R-approved')}'")
    assert _in_view(page, section)
    assert "voted approve as manager" in section.inner_text()
    assert COMMENT in section.inner_text()  # the comment, as text: no markup ran
    assert section.locator("table").first.inner_text().count("bob (manager) approve") == 1
    page.close()


def _in_view(page: Any, element: Any) -> bool:
    box = element.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and 0 <= box["y"] < height
