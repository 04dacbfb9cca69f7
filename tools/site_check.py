"""Open every page of the built course site in a real headless browser and check it as a reader
would meet it (`make site-check`, after `make site`).

For each HTML page: it loads (HTTP 200 from a local server), no console error or uncaught
exception, no request leaves this machine (the site must work offline), every image has decoded
(``naturalWidth > 0``) and has alt text, every math element is typeset by MathJax without a TeX
error, and every link to another page of the site (and its ``#anchor``) resolves, no code block
shows nbval's ``# NBVAL_...`` markers, and one search field is shown. Each page is also saved as a screenshot
under ``--shots`` to look at.

The browser is Debian's ``chromium-headless-shell`` (``apt-get install chromium-headless-shell``),
driven by the ``playwright`` Python package with ``executable_path``: playwright's own browser
download is not needed.

    python tools/site_check.py [--site docs/_build/html] [--browser /usr/bin/chromium-headless-shell]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
CHAPTERS = 11  # notebooks/00_*.html ... 10_*.html

# Waits until MathJax (when the page loads it) has typeset, then reports what a reader sees.
PAGE_STATE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  return {
    images: [...document.images].map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                                          alt: img.alt.trim()})),
    math: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    texErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent),
    rawTex: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
              .map(e => e.textContent.slice(0, 60)),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    title: document.title,
    nbvalMarkers: [...document.querySelectorAll('.cell_input pre')].filter(e => /NBVAL_/.test(e.textContent))
                    .length,
    searchFields: [...document.querySelectorAll('.search-button-field, input[type=search]')]
                    .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
                    .length,
  };
}"""


def find_browser(given: str | None) -> str:
    path = given or next((p for name in BROWSERS if (p := shutil.which(name))), None)
    if path is None or not Path(path).exists():
        sys.exit(
            "site-check: no headless Chromium found: apt-get install chromium-headless-shell "
            "(or pass --browser /path/to/chromium)"
        )
    return path


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A local HTTP server on a free port of 127.0.0.1, serving ``folder`` quietly."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def pages_of(site: Path) -> list[str]:
    skip = {"genindex.html", "search.html", "index.html"}  # Sphinx's index pages; the root redirect
    return sorted(
        rel
        for p in site.rglob("*.html")
        if not (rel := p.relative_to(site).as_posix()).startswith("_") and rel not in skip
    )


def check_page(context, base: str, name: str, shots: Path | None) -> tuple[list[str], dict]:
    """Open one page of the site offline; return its problems and its state (``PAGE_STATE``)."""
    page = context.new_page()
    seen: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith(base) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            seen.append(f"request to {route.request.url} (the site must work offline)")
            route.abort()

    page.route("**/*", offline)
    page.on("console", lambda m: m.type == "error" and seen.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: seen.append(f"uncaught: {e}"))
    page.on("response", lambda r: r.status >= 400 and seen.append(f"HTTP {r.status} for {r.url}"))
    response = page.goto(base + name, wait_until="load")
    if response is None or response.status != 200:
        seen.append(f"page did not load ({response and response.status})")
    state = page.evaluate(PAGE_STATE)
    page.wait_for_timeout(200)  # late console errors
    if shots is not None:
        shot = shots / (name.replace("/", "__").removesuffix(".html") + ".png")
        page.screenshot(path=str(shot), full_page=False)
    seen += [f"image not decoded: {i['src']}" for i in state["images"] if i["width"] == 0]
    seen += [f"image without alt text: {i['src']}" for i in state["images"] if not i["alt"]]
    seen += [f"TeX error: {t}" for t in state["texErrors"]]
    seen += [f"math not typeset: {t!r}" for t in state["rawTex"]]
    if state["nbvalMarkers"]:
        seen.append(f"{state['nbvalMarkers']} code blocks show nbval's NBVAL_ markers")
    if state["searchFields"] != 1:
        seen.append(f"{state['searchFields']} search fields on the page, expected one")
    if state["math"] and not state["typeset"]:
        seen.append(f"{state['math']} math elements, none typeset (MathJax not loaded?)")
    page.close()
    return seen, state


def check_site(site: Path, browser: str, shots: Path | None) -> list[str]:
    from playwright.sync_api import sync_playwright

    pages = pages_of(site)
    chapters = [p for p in pages if p.startswith("notebooks/")]
    problems = [] if len(chapters) == CHAPTERS else [f"expected {CHAPTERS} chapters, found {chapters}"]
    server, base = serve(site)
    ids: dict[str, set[str]] = {}
    links: dict[str, list[str]] = {}
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=browser, args=["--no-sandbox"])
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            front = context.new_page()  # the site's root sends the reader to the front page
            front.goto(base)
            try:
                front.wait_for_url("**/docs/index.html", timeout=5000)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError; reported below
                problems.append(f"the site's root does not lead to docs/index.html (at {front.url})")
            front.close()
            for name in pages:
                seen, state = check_page(context, base, name, shots)
                ids[name] = set(state["ids"])
                links[name] = state["links"]
                problems += [f"{name}: {p}" for p in seen]
                print(
                    f"{name}: {len(state['images'])} images, {state['typeset']} formulas, "
                    f"{len(state['links'])} links, {len(seen)} problems"
                )
            chromium.close()
    finally:
        server.shutdown()
    problems += check_links(pages, links, ids, base)
    for chapter in chapters[:-1]:  # each chapter leads on to the next
        following = chapters[chapters.index(chapter) + 1]
        if not any(urlparse(u).path.endswith("/" + following) for u in links.get(chapter, [])):
            problems.append(f"{chapter}: no link to the next chapter {following}")
    return problems


def check_links(pages: list[str], links: dict[str, list[str]], ids: dict[str, set[str]], base: str):
    """Every link inside the site names a page that exists and, with a #fragment, an element on it."""
    problems = []
    for name, urls in links.items():
        for url in urls:
            if not url.startswith(base):
                continue
            target, fragment = urldefrag(url)
            path = urlparse(urljoin(base, target)).path.lstrip("/") or "index.html"
            if path.endswith("/"):
                path += "index.html"
            if path.startswith("_") or path in ("genindex.html", "search.html", "index.html"):
                continue  # theme assets, Sphinx's index pages and the root redirect
            if path not in ids:
                problems.append(f"{name}: link to a missing page {path}")
            elif fragment and fragment not in ids[path]:
                problems.append(f"{name}: link to a missing anchor {path}#{fragment}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/site_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "docs" / "_build" / "html")
    parser.add_argument(
        "--browser", help=f"a Chromium binary (default: the first of {', '.join(BROWSERS)} on PATH)"
    )
    parser.add_argument("--shots", type=Path, default=ROOT / "docs" / "_build" / "site-check")
    args = parser.parse_args(argv)
    if not (args.site / "docs" / "index.html").is_file():
        parser.error(f"no built site in {args.site}: run make site first")
    browser = find_browser(args.browser)
    args.shots.mkdir(parents=True, exist_ok=True)
    problems = check_site(args.site, browser, args.shots)
    for problem in problems:
        print("PROBLEM", problem)
    pages = pages_of(args.site)
    failed = {problem.split(":", 1)[0] for problem in problems} & set(pages)
    site_wide = [problem for problem in problems if problem.split(":", 1)[0] not in pages]
    print(f"{len(problems)} problems; screenshots of each page in {args.shots}")
    # one line in the form test runners close with: pages (and the site-wide checks) passed / failed
    print(f"site-check: {len(pages) - len(failed)} passed, {len(failed) + bool(site_wide)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
