"""Variant no-templates: /fortunes rendered by str.join and markupsafe.escape, the escape
Jinja2's autoescape calls, instead of the Jinja2 template: the same bytes, no template
engine. (html.escape would write &quot; and &#x27; where Jinja2 writes &#34; and &#39;.)"""

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import escape
from sb_routes import replace_route
from sqlalchemy import select

import main
from main import SessionLocal, app
from models import Fortune

HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
TAIL = "</table></body></html>"


async def fortunes(request: Request) -> HTMLResponse:
    async with SessionLocal() as session:
        rows = list(await session.scalars(select(Fortune)))
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda fortune: fortune.message)
    cells = "".join(
        f"<tr><td>{fortune.id}</td><td>{escape(fortune.message)}</td></tr>" for fortune in rows
    )
    return HTMLResponse(HEAD + cells + TAIL)


replace_route(app, "/fortunes", main.fortunes, fortunes)
