"""Server-side SVG charts for the admin overview: no script, no external asset (strict CSP friendly).

Each chart is an accessible <svg role="img"> with a <title>; the page also shows the numbers as text.
"""

from __future__ import annotations

from markupsafe import Markup, escape

BAR = "#1f6feb"
PALETTE = {"answered": "#2da44e", "refused": "#cf222e", "handoff": "#bf8700", "other": "#8c959f",
           "up": "#2da44e", "down": "#cf222e"}


def columns(points: list[tuple[str, float]], title: str, width: int = 640, height: int = 180) -> Markup:
    """Vertical bars, e.g. questions per day; every 5th label is written under its bar."""
    n = max(len(points), 1)
    top = max((v for _, v in points), default=0) or 1
    pad_l, pad_b, pad_t = 32, 22, 12
    w = (width - pad_l) / n
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<text x="2" y="{pad_t + 4}" class="axis">{int(top)}</text>',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width}" y2="{height - pad_b}" class="base"/>']
    for i, (label, v) in enumerate(points):
        h = (height - pad_b - pad_t) * v / top
        x = pad_l + i * w
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - pad_b - h:.1f}" width="{max(w - 2, 1):.1f}" height="{h:.1f}" '
                     f'fill="{BAR}"><title>{escape(label)}：{v:g}</title></rect>')
        if i % 5 == 0 or i == n - 1:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(items: list[tuple[str, float]], title: str, width: int = 640, colors: dict | None = None,
         keys: list[str] | None = None) -> Markup:
    """Horizontal bars with the label on the left and the value on the right (outcomes, top matters)."""
    row, label_w = 26, 170
    height = max(len(items), 1) * row + 8
    top = max((v for _, v in items), default=0) or 1
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, v) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 60) * v / top
        color = (colors or {}).get((keys or [])[i] if keys else label, BAR)
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" class="label">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{color}"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" class="value">{v:g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(values: list[float], edges: list[float], title: str, unit: str = "分钟") -> Markup:
    """Counts of values per bucket [edges[i], edges[i+1]), the last bucket open-ended."""
    labels, counts = [], []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        labels.append(f"{lo:g}–{hi:g}{unit}" if hi is not None else f"≥{lo:g}{unit}")
        counts.append(sum(1 for v in values if v >= lo and (hi is None or v < hi)))
    return bars(list(zip(labels, counts)), title)
