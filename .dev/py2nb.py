"""Turn a percent-format script into a clean chapter notebook (no outputs, no execution counts).

    .venv/bin/python .dev/py2nb.py .dev/nbsrc/02_mgn.py notebooks/02_mgn.ipynb

Cells start with lines like:
    # %% [markdown]                -> markdown cell (each following line's leading "# " is stripped)
    # %% tags=["parameters"]       -> code cell tagged parameters
    # %% tags=["exercise"]         -> code cell tagged exercise
    # %%                           -> code cell
Keep chapter sources in .dev/nbsrc/ (ignored by git); the committed artefact is the .ipynb.
"""
import json
import re
import sys

import nbformat


def convert(src: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    cells, kind, tags, buf = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            c = nbformat.v4.new_code_cell(text)
            if tags:
                c.metadata["tags"] = tags
            cells.append(c)

    for line in src.splitlines():
        m = re.match(r"^# %%\s*(\[markdown\])?\s*(tags=(\[.*\]))?\s*$", line)
        if m:
            flush()
            kind = "markdown" if m.group(1) else "code"
            tags = json.loads(m.group(3)) if m.group(3) else []
            buf = []
        else:
            buf.append(line)
    flush()

    for i, c in enumerate(cells):
        c["id"] = f"c{i:03d}"
    nb.cells = cells
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    nb = convert(open(src, encoding="utf-8").read())
    nbformat.write(nb, dst)
    print(f"wrote {dst}: {len(nb.cells)} cells")
