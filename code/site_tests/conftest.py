"""Fixtures for the tests of the built website (``make test-site``, after the book build).

The site is ``_build/html`` (or ``$SEQLAB_SITE``). ``site_server`` serves it
on a free localhost port from a thread; ``browser`` is headless Chromium
driven by Playwright, found as ``$SEQLAB_CHROMIUM`` or ``chromium`` on the
PATH (Debian's package; ``playwright install`` is never needed). Without a
built site, Playwright or a Chromium, the tests that need them are skipped
with a message that says what is missing.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from site_helpers import CHROMIUM_ARGS, SITE, find_chromium


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "search.html").is_file():
        pytest.skip(f"no built site in {SITE}: run `make test-book` (or `make book`) first")
    return SITE


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".woff2": "font/woff2", ".woff": "font/woff", ".js": "text/javascript"}

    def do_GET(self):
        # browsers ask the server's root for /favicon.ico on their own: on the real
        # host that is outside the book, so it is no error of the site's
        if self.path == "/favicon.ico" and not (Path(self.directory) / "favicon.ico").exists():
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    # a page asks for dozens of files at once (MathJax, figures), each on its own HTTP/1.0 connection:
    # a longer queue of connections waiting to be accepted than socketserver's 5
    request_queue_size = 128


@pytest.fixture(scope="session")
def site_server(site):
    """The built site on http://127.0.0.1:<free port>/, served from a thread."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser_context():
    """A headless Chromium with a fresh profile; requests that leave localhost are blocked and recorded."""
    executable = find_chromium()
    if executable is None:
        pytest.skip("browser test skipped: no Chromium on this machine (install Debian's `chromium`, "
                    "as .ci/run does, or set SEQLAB_CHROMIUM to a Chromium/Chrome binary)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test skipped: the Python package `playwright` is not installed (it is in requirements.txt)")
    profile = tempfile.mkdtemp(prefix="seqlab-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, service_workers="block",
        )
        context.external_requests = []  # every request that tried to leave localhost

        def offline(route):
            url = route.request.url
            if url.startswith(("http://127.0.0.1:", "data:", "blob:", "about:")):
                route.continue_()
            else:
                context.external_requests.append(url)
                route.abort("internetdisconnected")

        context.route("**/*", offline)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
