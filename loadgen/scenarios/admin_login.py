"""``django-admin-login``: benchmark-django-fastapi's k6 flow.

GET /admin/login/ -> read the ``csrftoken`` cookie -> POST the login form
(username, password, csrfmiddlewaretoken, next) with a Referer -> expect a 302 to
/admin/ -> GET /api/colleges and /api/troupes, each with status and shape checks.

Options: ``username`` / ``password`` (default: env ``STACKBENCH_ADMIN_USER`` /
``STACKBENCH_ADMIN_PASSWORD``), ``sample`` (check list bodies every N-th iteration,
default 1).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import ConfigError
from ..scenario_types import Scenario
from ..user import User

_CSRF_INPUT = r'name="csrfmiddlewaretoken" value="([^"]+)"'


def _list_ok(body: bytes, item_keys: set[str]) -> bool:
    try:
        d = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(d, dict)
        and isinstance(d.get("results"), list)
        and all(isinstance(x, dict) and item_keys <= x.keys() for x in d["results"])
    )


async def login_then_browse(user: User) -> None:
    opts = user.options
    r = await user.get("/admin/login/", name="GET /admin/login/")
    user.check("login page: status is 200", r.status == 200)
    token = user.cookies.get("csrftoken")
    if not user.check("login page: csrftoken cookie set", token):
        # fall back to the hidden form field, as a browser would still have it
        token = user.extract(_CSRF_INPUT, r.text) if r.status == 200 else None
        if not token:
            return
    form = {
        "username": opts["username"],
        "password": opts["password"],
        "csrfmiddlewaretoken": token,
        "next": "/admin/",
    }
    r = await user.post(
        "/admin/login/?next=/admin/",
        name="POST /admin/login/",
        form=form,
        headers={"Referer": f"{user.base_url}/admin/login/"},
        expect=(302,),
    )
    loc = r.header("location") or ""
    logged_in = user.check(
        "login: 302 to /admin/", r.status == 302 and loc.split("?")[0].endswith("/admin/")
    )
    user.check("login: sessionid cookie set", "sessionid" in user.cookies)
    if not logged_in:
        return
    sample = max(1, int(opts.get("sample", "1")))
    do_body = user.state.setdefault("n", 0) % sample == 0
    user.state["n"] += 1
    r = await user.get("/api/colleges", name="GET /api/colleges")
    user.check("colleges: status is 200", r.status == 200)
    if do_body:
        user.check(
            "colleges: body is a page of colleges",
            _list_ok(r.body, {"id", "name", "location", "troupe"}),
        )
    r = await user.get("/api/troupes", name="GET /api/troupes")
    user.check("troupes: status is 200", r.status == 200)
    if do_body:
        user.check(
            "troupes: body is a page of troupes", _list_ok(r.body, {"id", "name", "members"})
        )


def admin_login(opts: dict[str, str]) -> Scenario:
    o: dict[str, Any] = dict(opts)
    o["username"] = o.get("username") or os.environ.get("STACKBENCH_ADMIN_USER", "")
    o["password"] = o.get("password") or os.environ.get("STACKBENCH_ADMIN_PASSWORD", "")
    if not o["username"] or not o["password"]:
        raise ConfigError(
            "django-admin-login needs credentials: set STACKBENCH_ADMIN_USER and "
            "STACKBENCH_ADMIN_PASSWORD or pass --scenario-option username=... password=..."
        )
    o.setdefault("sample", "1")
    return Scenario(
        name="django-admin-login",
        flows=[(1.0, login_then_browse)],
        options=o,
        description=(__doc__ or "").strip().splitlines()[0],
    )
