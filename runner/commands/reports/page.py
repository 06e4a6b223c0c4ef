"""One report page, written twice from the same parts: Markdown for git and terminals, and a static HTML
file (no server, no scripts) that embeds the PNGs beside it. Plots share one headless matplotlib style."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are made on servers and in CI
import matplotlib.pyplot as plt

from runner.core import layout

STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 9}  # fmt: skip
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em;margin-bottom:1.5em}"""


def figure(width: float = 7.0, height: float = 3.2, rows: int = 1):
    with plt.style.context("default"), plt.rc_context(STYLE):
        return plt.subplots(rows, 1, figsize=(width, height), sharex=rows > 1)


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


@dataclass
class Page:
    title: str
    parts: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(("heading", text))

    def text(self, text: str) -> None:
        self.parts.append(("text", text))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.parts.append(("table", (headers, rows)))

    def image(self, name: str, caption: str) -> None:
        self.parts.append(("image", (name, caption)))

    @property
    def images(self) -> list[str]:
        return [payload[0] for kind, payload in self.parts if kind == "image"]

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, payload in self.parts:
            if kind == "heading":
                out += [f"## {payload}", ""]
            elif kind == "text":
                out += [payload, ""]
            elif kind == "table":
                headers, rows = payload
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |" for row in rows]
                out.append("")
            else:
                name, caption = payload
                out += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
               f"<style>{CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"]  # fmt: skip
        for kind, payload in self.parts:
            if kind == "heading":
                out.append(f"<h2>{html.escape(payload)}</h2>")
            elif kind == "text":
                out.append(f"<p>{html.escape(payload)}</p>")
            elif kind == "table":
                headers, rows = payload
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows]
                out.append("</table>")
            else:
                name, caption = payload
                out.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip
        out.append("</body></html>")
        return "\n".join(out)

    def print(self) -> None:
        """The page's headings, text and tables in the terminal, with rich; the plots stay in the files."""
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(f"[bold]{self.title}[/bold]")
        for kind, payload in self.parts:
            if kind == "heading":
                console.print(f"\n[bold]{payload}[/bold]")
            elif kind == "text":
                console.print(payload, highlight=False)
            elif kind == "table":
                headers, rows = payload
                table = Table(*headers)
                for row in rows:
                    table.add_row(*(_cell(v) for v in row))
                console.print(table)
            else:
                name, caption = payload
                console.print(f"[dim]{caption} ({name})[/dim]", highlight=False)

    def write(self, folder: Path) -> list[str]:
        """report.md and report.html beside the PNGs; returns the files written (relative)."""
        stem = layout.REPORT_STEM
        for suffix, content in ((".md", self.markdown()), (".html", self.html())):
            temporary = folder / f".{stem}{suffix}"
            temporary.write_text(content)
            temporary.replace(folder / f"{stem}{suffix}")
        return [f"{stem}.md", f"{stem}.html", *self.images]
