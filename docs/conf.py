"""Sphinx + myst-nb configuration of the course site (`make site`).

The site is the series as stored: the notebooks' saved outputs are rendered, nothing is executed,
and nothing is fetched from the internet, at build time or when a page is read. Math is typeset by
a copy of MathJax 3 that the PyPI package ``django-static-mathjax`` ships (no CDN); widget outputs
(tqdm bars) are shown by their text fallback, since the widget JavaScript would come from a CDN.

Built from the repository root so that the README is the front page and the notebooks stay where
they are: ``sphinx-build -b html -c docs . docs/_build/html`` (tools/site_check.py checks the result).
"""

import json
import re
import shutil
from importlib.resources import files
from pathlib import Path

project = "retina_edu"
author = "the retina_edu maintainers"
copyright = "2026, the retina_edu maintainers"

root_doc = "docs/index"
extensions = ["myst_nb"]
include_patterns = ["docs/index.md", "notebooks/[0-9][0-9]_*.ipynb"]
exclude_patterns = [".venv", "data", "docs/_build", "runs", "build", "dist", "**/.ipynb_checkpoints"]

nb_execution_mode = "off"  # the stored outputs, as make test checked them
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN: widget outputs show their text form
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = "retina_edu: RetinaNet from scratch"
html_theme_options = {
    "navbar_persistent": [],  # one search box, the sidebar's: not a second one in the header bar
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

mathjax_path = "mathjax/tex-chtml.js"  # relative to _static: the copy made by _copy_mathjax below; its
# fonts are found beside it (MathJax's default fontURL is relative to the script)
# the bundles this site does not use (SVG output, MathML input, the speech-enabled builds)
_UNUSED = shutil.ignore_patterns("*svg*.js", "*-full*.js", "mml-*.js", "tex-mml-*.js", "node-main.js")


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        mathjax = files("mathjax") / "static" / "mathjax" / "es5"  # the [site] extra's MathJax
        shutil.copytree(
            Path(str(mathjax)), Path(app.outdir) / "_static" / "mathjax", ignore=_UNUSED, dirs_exist_ok=True
        )
        # the front page is docs/index.html: send the site's root there
        (Path(app.outdir) / "index.html").write_text(
            '<!DOCTYPE html><meta charset="utf-8"><title>retina_edu</title>'
            '<meta http-equiv="refresh" content="0; url=docs/index.html">'
            '<a href="docs/index.html">retina_edu</a>\n'
        )


# nbval's markers (`# NBVAL_CHECK_OUTPUT`, `# NBVAL_IGNORE_OUTPUT`, ...) open the code cells they
# mark; they tell the test run what to compare and mean nothing to a reader, so the pages leave them out.
NBVAL_MARKER = re.compile(r"#\s*NBVAL_[A-Z_]+[^\S\n]*(\n|$)")


def for_the_site(source: str) -> str:
    """A notebook's JSON text with the nbval marker lines removed from the top of its code cells,
    and each figure's alt text (``metadata.alt``, which nbconvert and JupyterLab read) also where
    myst-nb looks for it (``metadata.mystnb.image.alt``)."""
    notebook = json.loads(source)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            if alt := cell["metadata"].get("alt"):
                cell["metadata"].setdefault("mystnb", {}).setdefault("image", {})["alt"] = alt
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            while (marker := NBVAL_MARKER.match(text)) is not None:
                text = text[marker.end() :]
            cell["source"] = text
    return json.dumps(notebook)


def _for_the_site(app, docname, content):
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        content[0] = for_the_site(content[0])


def setup(app):
    app.connect("source-read", _for_the_site)
    app.connect("build-finished", _copy_mathjax)
