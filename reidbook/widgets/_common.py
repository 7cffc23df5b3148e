"""What every widget shares: drawing a figure into an ``interactive_output`` and closing it."""
from __future__ import annotations


def _show(fig) -> None:
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


class WithStatic:
    """A widget that carries its own static form: live in JupyterLab (the widget view wins there), and
    the static ``html`` in an exported page or any front end without the widget's state (nbconvert
    falls back to the next mime type when a widget's state is not saved, which is how reidbook commits
    and exports chapters). Display it like a widget: ``display(WithStatic(box, html))`` or as a cell's
    last expression."""

    def __init__(self, widget, html: str):
        self.widget = widget
        self.html = html

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle = dict(bundle)
        bundle["text/html"] = self.html
        return bundle


def figure_html(fig, alt: str = "", width: int | None = None) -> str:
    """A matplotlib figure as an ``<img>`` tag (PNG, base64) for a widget's static form; closes the figure."""
    import base64
    import html
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    w = f' width="{int(width)}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{w}/>'
