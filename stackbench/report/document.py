"""A report as a ``Page``: a list of blocks, rendered to Markdown and to one self-contained
HTML page. ("Document" is the harness's word for a JSON file: stackbench/documents.py.)

Both renderings come from the same blocks, so the page and the Markdown never disagree.
Text blocks use a tiny subset of Markdown inline markup: ``**bold**``, ```code``` and
``[text](#anchor)`` (a link to a heading of the page).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from stackbench.report.tables import Table


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Image:
    path: Path
    alt: str


@dataclass
class Contents:
    """Links to every second-level heading after it (a table of contents)."""

    title: str = "Contents"


Block = Heading | Text | Bullets | Table | Image | Contents


@dataclass
class Page:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def _contents(self, contents: Contents) -> list[str]:
        """'[heading](#anchor)' of each level-2 heading after ``contents``."""
        after = self.blocks[self.blocks.index(contents) + 1 :]
        return [
            f"[{block.text}](#{anchor(block.text)})"
            for block in after
            if isinstance(block, Heading) and block.level == 2
        ]

    # ---------------------------------------------------------------- Markdown

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            if isinstance(block, Heading):
                out += ["#" * block.level + " " + block.text, ""]
            elif isinstance(block, Text):
                out += [block.text, ""]
            elif isinstance(block, Bullets):
                out += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                if block.caption:
                    out += [block.caption, ""]
                out += [block.markdown(), ""]
            elif isinstance(block, Image):
                out += [f"![{block.alt}]({block.path.name})", ""]
            elif isinstance(block, Contents):
                out += [f"**{block.title}**", ""]
                out += [f"- {link}" for link in self._contents(block)] + [""]
        return "\n".join(out).rstrip() + "\n"

    # ---------------------------------------------------------------- HTML

    def html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>"]
        for block in self.blocks:
            if isinstance(block, Heading):
                level = min(block.level, 6)
                body.append(f'<h{level} id="{anchor(block.text)}">{_inline(block.text)}</h{level}>')
            elif isinstance(block, Text):
                body.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                items = "".join(f"<li>{_inline(item)}</li>" for item in block.items)
                body.append(f"<ul>{items}</ul>")
            elif isinstance(block, Table):
                body.append(_table(block))
            elif isinstance(block, Contents):
                links = "".join(f"<li>{_inline(link)}</li>" for link in self._contents(block))
                body.append(
                    f'<nav class="contents"><strong>{_inline(block.title)}</strong>'
                    f"<ol>{links}</ol></nav>"
                )
            elif isinstance(block, Image):
                data = base64.b64encode(block.path.read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" '
                    f'alt="{html.escape(block.alt)}"><figcaption>{_inline(block.alt)}'
                    "</figcaption></figure>"
                )
        return PAGE.format(title=html.escape(self.title), body="\n".join(body))


def anchor(heading: str) -> str:
    """A heading's id in the HTML page, and its link target in both renderings."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    # [text](#anchor): a link within the page, nothing else (the page fetches nothing).
    return re.sub(r"\[([^\]]+)\]\(#([a-z0-9-]+)\)", r'<a href="#\2">\1</a>', escaped)


def _table(table: Table) -> str:
    def align(i: int) -> str:
        return ' class="num"' if i in table.right else ""

    head = "".join(f"<th{align(i)}>{_inline(h)}</th>" for i, h in enumerate(table.headers))
    rows = "".join(
        "<tr>" + "".join(f"<td{align(i)}>{_inline(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{_inline(table.caption)}</caption>" if table.caption else ""
    return (
        f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


# No script, no external resource: the policy forbids every fetch but inline images/styles.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1200px; margin: 2em auto; padding: 0 1.2em; }}
h1 {{ font-size: 1.6em; }}
h2 {{ margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }}
code {{ background: #f2f2f2; padding: 0 .25em; border-radius: 3px; }}
.scroll {{ overflow-x: auto; margin: 1em 0; }}
table {{ border-collapse: collapse; font-size: 13px; }}
caption {{ text-align: left; color: #555; padding-bottom: .3em; }}
th, td {{ border: 1px solid #ddd; padding: .3em .55em; text-align: left; vertical-align: top; }}
th {{ background: #f5f6f8; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
tbody tr:nth-child(even) {{ background: #fafbfc; }}
figure {{ margin: 1.2em 0; }}
figure img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
figcaption {{ color: #555; font-size: 13px; }}
nav.contents {{ background: #f5f6f8; border: 1px solid #ddd; border-radius: 4px;
               padding: .5em 1em; margin: 1em 0; font-size: 14px; }}
nav.contents ol {{ margin: .3em 0; columns: 2; }}
a {{ color: #1f5fa8; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
