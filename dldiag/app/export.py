"""A self-contained HTML report of the current view: settings, figures, plotly.js inline."""

from __future__ import annotations

import datetime as _dt
import html

import plotly.io as pio

__all__ = ["report_html", "report_filename"]

_CSS = """
body { font-family: Inter, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; margin: 24px 32px;
       background: #f5f7fa; }
h1 { font-size: 22px; margin: 0 0 4px; }
.sub { color: #52606d; margin: 0 0 18px; }
table.settings { border-collapse: collapse; margin: 0 0 20px; background: white; }
table.settings td { border: 1px solid #d9e2ec; padding: 4px 10px; font-size: 13px; }
table.settings td:first-child { color: #52606d; }
.fig { background: white; border: 1px solid #d9e2ec; border-radius: 6px; padding: 8px; margin: 0 0 16px; }
a { color: #2f6fde; }
"""


def report_filename(dataset: str, sampler: str, fraction: float) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in dataset)
    return f"dldiag-{safe}-{sampler}-{round(fraction * 100)}pct-{stamp}.html"


def report_html(figures: dict, settings: list[tuple[str, str]], *, title: str, link: str | None = None) -> str:
    """One HTML page holding every figure (interactive) and a table of the settings.

    Parameters
    ----------
    figures : dict of str -> plotly Figure (or dict)
        In display order; the key is the figure's caption.
    settings : list of (name, value)
    title : str
    link : str, optional
        The app URL that restores this view.

    Returns
    -------
    str
        A complete HTML document; plotly.js is embedded once, so it opens offline.
    """
    rows = "\n".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                     for k, v in settings)
    parts = []
    first = True
    for caption, fig in figures.items():
        div = pio.to_html(fig, full_html=False, include_plotlyjs=True if first else False,
                          config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}},
                          default_width="100%")
        first = False
        parts.append(f'<section class="fig" aria-label="{html.escape(caption)}">{div}</section>')
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    link_html = f' · <a href="{html.escape(link)}">open this view in the app</a>' if link else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">Exported {when} from dldiag{link_html}</p>
<table class="settings">{rows}</table>
{''.join(parts)}
</body></html>
"""
