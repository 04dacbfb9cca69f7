"""The course site's sources and checker (the site itself: `make site-check`, a browser is needed)."""

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, path: Path):
    """A module of the site's tools (tools/site_check.py, docs/conf.py), which are not a package."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_site_check():
    return load("site_check", ROOT / "tools" / "site_check.py")


def test_the_site_lists_every_notebook_in_order():
    toctree = re.search(r"```\{toctree\}(.*?)```", (ROOT / "docs" / "index.md").read_text(), re.S).group(1)
    entries = [line.strip() for line in toctree.splitlines() if line.strip().startswith("/notebooks/")]
    notebooks = sorted(f"/notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert entries == notebooks
    assert len(entries) == load_site_check().CHAPTERS


def test_the_front_page_is_the_readme():
    assert "```{include} ../README.md" in (ROOT / "docs" / "index.md").read_text()


def test_link_check_reports_missing_pages_and_anchors():
    check_links = load_site_check().check_links
    base = "http://127.0.0.1:1/"
    ids = {"notebooks/01_a.html": {"top", "iou"}, "notebooks/02_b.html": {"top"}}
    links = {
        "notebooks/01_a.html": [
            base + "notebooks/02_b.html#top",  # fine
            base + "notebooks/02_b.html#gone",  # no such anchor
            base + "notebooks/03_c.html",  # no such page
            base + "_static/theme.css",  # an asset: not a page
            "https://example.org/",  # outside the site: the browser check blocks such requests
        ],
        "notebooks/02_b.html": [base + "notebooks/01_a.html#iou"],
    }
    problems = check_links(sorted(ids), links, ids, base)
    assert problems == [
        "notebooks/01_a.html: link to a missing anchor notebooks/02_b.html#gone",
        "notebooks/01_a.html: link to a missing page notebooks/03_c.html",
    ]


def test_the_site_gives_figures_their_alt_text_and_hides_nbval_markers():
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"alt": "A bar chart."},
                "source": "# NBVAL_CHECK_OUTPUT\nplot()",
            },
            {"cell_type": "code", "metadata": {}, "source": ["x = 1\n"]},
        ]
    }
    for_the_site = load("site_conf", ROOT / "docs" / "conf.py").for_the_site
    cells = json.loads(for_the_site(json.dumps(notebook)))["cells"]
    assert cells[0]["metadata"]["mystnb"] == {"image": {"alt": "A bar chart."}}  # where myst-nb reads it
    assert cells[0]["source"] == "plot()"
    assert "mystnb" not in cells[1]["metadata"] and cells[1]["source"] == "x = 1\n"
