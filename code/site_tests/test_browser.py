"""Every page of the built website in headless Chromium, with the network cut off.

For each page: no console error and no failed request, no request leaving
localhost, every image loaded, math rendered by MathJax (no raw TeX left in
the text), exercise solutions that open on a click, widgets drawn by the
vendored widget manager. The search page finds a term from the chapters.
Screenshots of every page's first screen go to ``_build/screenshots/``; with
``SEQLAB_FULL_SCREENSHOTS=1`` (``make screenshots``) also the whole page, as ``*.full.png``.
"""
from __future__ import annotations

import re
import time

import pytest

from site_helpers import FULL_SCREENSHOTS, SCREENSHOTS, SITE, chapter_pages, site_pages, vendored, widget_pages

# TeX that MathJax should have replaced: \( \) \[ \] $$ ... $$ and $...$ left in the visible text
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|(?<![\w$\\])\$[^\s$][^$\n]{0,200}?(?<![\s\\])\$(?![\w$])")

VISIBLE_TEXT_JS = """() => {
  const skip = new Set(['SCRIPT', 'STYLE', 'PRE', 'CODE', 'TEXTAREA', 'MJX-CONTAINER', 'NOSCRIPT']);
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName) || el.classList.contains('highlight')) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }});
  const parts = [];
  while (walker.nextNode()) parts.push(walker.currentNode.nodeValue);
  return parts.join(' ');
}"""

IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(resolve => { img.addEventListener('load', resolve); img.addEventListener('error', resolve); })));
  return imgs.map(img => ({src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0}));
}"""


@pytest.fixture(scope="module", autouse=True)
def fresh_screenshots(worker_id):
    """Screenshots of this run only, in _build/screenshots. Under pytest-xdist each worker runs this
    fixture, so only a run without workers clears old screenshots here (make test-site clears them
    before it starts the workers)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if worker_id == "master":
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()


def screenshot_name(page: str) -> str:
    return page.removesuffix(".html").replace("/", "__") + ".png"


LOAD_TIMEOUT_MS = 120_000
QUIET_MS = 500  # no request in flight for this long: the page has stopped loading


class InFlight:
    """The requests a tab has sent and not yet seen finish or fail.

    Playwright's own ``networkidle`` wait is discouraged by its authors as flaky, and it once
    waited out its whole timeout on a page whose every request had finished: this counts the
    page's requests from their events instead, so a wait that runs out names what it waited for.
    """

    def __init__(self, tab):
        self.tab = tab
        self.pending: dict = {}  # request -> its URL
        self.last_change = 0.0
        tab.on("request", self._sent)
        tab.on("requestfinished", self._done)
        tab.on("requestfailed", self._done)

    def _sent(self, request):
        self.pending[request] = request.url
        self.last_change = time.monotonic()

    def _done(self, request):
        self.pending.pop(request, None)
        self.last_change = time.monotonic()

    def settle(self, page: str, timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
        """Wait until no request has been in flight for ``QUIET_MS``; fail naming those still pending."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self.pending or time.monotonic() - self.last_change < QUIET_MS / 1000:
            if time.monotonic() > deadline:
                pytest.fail(f"{page}: requests still in flight after {timeout_ms / 1000:.0f} s: "
                            + ", ".join(sorted(self.pending.values())))
            self.tab.wait_for_timeout(100)  # lets playwright deliver the request events


def open_page(context, server, page):
    """Open ``page`` and wait until it stops loading; return it with the list of problems the browser
    reported while loading and its request counter (``InFlight``)."""
    tab = context.new_page()
    context.external_requests.clear()  # this page's own
    problems: list[str] = []
    tab.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    tab.on("pageerror", lambda err: problems.append(f"uncaught: {err}"))
    tab.on("requestfailed", lambda req: problems.append(f"failed request: {req.url} ({req.failure})"))
    tab.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None)
    in_flight = InFlight(tab)
    # make test runs the package tests beside these on two cores, where a long page (MathJax, dozens of figures)
    # once took more than playwright's default 30 s to load: a slow machine is not a broken page
    tab.goto(server + page, wait_until="load", timeout=LOAD_TIMEOUT_MS)
    in_flight.settle(page)
    return tab, problems, in_flight


@pytest.mark.parametrize("page", site_pages())
def test_page_in_the_browser(site, site_server, browser_context, page):
    html = (SITE / page).read_text(encoding="utf-8")
    tab, problems, in_flight = open_page(browser_context, site_server, page)
    try:
        # math: MathJax typeset every math element, without a TeX error
        n_math = html.count('class="math notranslate')
        if n_math:
            try:
                tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
            except Exception:
                pytest.fail(f"{page}: MathJax did not start; the browser reported:\n" + "\n".join(problems))
            tab.evaluate("() => MathJax.startup.promise")
            rendered = tab.locator("mjx-container").count()
            assert rendered >= n_math, f"{page}: {rendered} formulas rendered by MathJax, {n_math} in the page"
            assert tab.locator("mjx-merror").count() == 0, f"{page}: MathJax reports a TeX error"
        raw = RAW_TEX.findall(tab.evaluate(VISIBLE_TEXT_JS))
        assert not raw, f"{page}: raw TeX left in the text: {raw[:5]}"

        # every image loads (also those inside closed dropdowns)
        broken = [img["src"] for img in tab.evaluate(IMAGES_JS) if not img["ok"]]
        assert not broken, f"{page}: images that did not load: {broken}"

        # what a reader sees first: header, launch buttons, navigation
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=SCREENSHOTS / screenshot_name(page))

        # widgets: drawn by the vendored manager, with their icon fonts
        if page in widget_pages() and vendored():
            tab.wait_for_selector(".jupyter-widgets, .widget-interact", timeout=30_000)
            assert tab.locator(".jupyter-widgets, .widget-interact").first.is_visible(), f"{page}: widget not drawn"

        # exercise solutions: every one collapsed, with its toggle button (added by sphinx-togglebutton);
        # the first opens and closes on a click (one script serves them all, and each click waits ~0.3 s
        # for the animation)
        solutions = tab.locator("div.solution.dropdown")
        for i in range(solutions.count()):
            solution = solutions.nth(i)
            body = solution.locator(":scope > :not(.admonition-title)").first
            assert not body.is_visible(), f"{page}: solution {i + 1} is not collapsed"
            toggle = solution.locator("button.toggle-button")
            assert toggle.count() == 1, f"{page}: solution {i + 1} has {toggle.count()} toggle buttons, not 1"
            if i == 0:
                toggle.click()
                body.wait_for(state="visible", timeout=5_000)
                toggle.click()
                body.wait_for(state="hidden", timeout=5_000)

        in_flight.settle(page)
        if FULL_SCREENSHOTS:  # the whole page (Chromium leaves the sticky sidebars out of a full-page capture)
            tab.screenshot(path=SCREENSHOTS / screenshot_name(page).replace(".png", ".full.png"), full_page=True)
        if page in widget_pages() and not vendored():
            problems = [p for p in problems if "_static/widgets/" not in p]  # reported by test_widget_manager_is_vendored
        assert not problems, f"{page}: the browser reported:\n" + "\n".join(problems)
        assert not browser_context.external_requests, f"{page} asked the network for: {browser_context.external_requests}"
    finally:
        tab.close()


# (term, the page that must be among the results): a term from chapter 2 or later
SEARCHES = [
    ("forget gate", "chapters/04_gating_lstm_gru.html"),
    ("nn.RNN", "chapters/02_recurrent_networks.html"),
]


@pytest.mark.parametrize("term,expected", SEARCHES)
def test_search_finds_a_term_from_the_chapters(site, site_server, browser_context, term, expected):
    if not (SITE / expected).is_file():
        pytest.skip(f"{expected} is not in this build")
    tab, problems, _ = open_page(browser_context, site_server, "search.html?q=" + term.replace(" ", "+"))
    try:
        tab.wait_for_selector("ul.search li a", timeout=30_000)
        tab.wait_for_function("() => !document.querySelector('#search-progress') || "
                              "!/Searching/.test(document.querySelector('#search-progress').textContent)", timeout=30_000)
        hrefs = tab.eval_on_selector_all("ul.search li a", "links => links.map(a => a.getAttribute('href'))")
        assert any(h.split("?")[0].split("#")[0] == expected for h in hrefs), f"searching {term!r} did not find {expected}: {hrefs}"
        tab.screenshot(path=SCREENSHOTS / f"search__{term.replace(' ', '_').replace('.', '_')}.png")
        assert not problems, "\n".join(problems)
    finally:
        tab.close()


def test_every_chapter_was_visited():
    pages = set(site_pages())
    assert all(f"{c}.html" in pages for c in chapter_pages()), "a chapter of _toc.yml is missing from the built site"
