"""Apps nobody here wrote for the harness, made in a temporary directory as their authors
would make them: a Django project from ``django-admin startproject`` with one model and one
view, the Starlette service in ``notes/`` (docs/your-app.md's example), and a copy of a
reference app with one middleware of its own. Each gets a declaration and a scenario file,
as docs/your-app.md tells its reader to write them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN_DIR = Path(sys.executable).parent

DJANGO_DECLARATION = """\
description = "django-admin startproject, one model, one view"
requirements = ["requirements.txt"]
schema = "python manage.py migrate --noinput"
setup = ["python manage.py loaddata greetings"]
health = "/greetings/1"
lifespan = false

[interfaces]
wsgi = "mysite.wsgi:application"
asgi = "mysite.asgi:application"

[environment]
DATABASE_URL = "{database_url}"
SECRET_KEY = "{secret_key}"
DJANGO_SETTINGS_MODULE = "mysite.settings"
"""

DJANGO_SCENARIOS = """\
[scenarios.greeting]
description = "one greeting by id"

[[scenarios.greeting.requests]]
path = "/greetings/{id}"
ids = {range = [1, 20]}
check.regex = '^[{]"id": [0-9]+, "text": "hello [0-9]+"[}]$'
"""

MODEL = """\
from django.db import models


class Greeting(models.Model):
    text = models.CharField(max_length=100)
"""

VIEW = """\
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from .models import Greeting


def greeting(request, pk):
    found = get_object_or_404(Greeting, pk=pk)
    return JsonResponse({"id": found.pk, "text": found.text})
"""


def django_project(parent: Path) -> Path:
    """``django-admin startproject mysite`` and ``startapp greetings`` (one model, one view,
    its migration made by ``makemigrations``, twenty rows as a fixture), the settings read
    from the environment as a deployment would, then a declaration and a scenario file."""
    project = parent / "mysite"
    project.mkdir()
    _run([str(BIN_DIR / "django-admin"), "startproject", "mysite", str(project)], parent)
    _run([sys.executable, "manage.py", "startapp", "greetings"], project)
    app = project / "greetings"
    (app / "models.py").write_text(MODEL)
    (app / "views.py").write_text(VIEW)
    (app / "fixtures").mkdir()
    rows = [
        {"model": "greetings.greeting", "pk": n, "fields": {"text": f"hello {n}"}}
        for n in range(1, 21)
    ]
    (app / "fixtures" / "greetings.json").write_text(json.dumps(rows))
    settings = project / "mysite" / "settings.py"
    text = settings.read_text()
    for old, new in (
        (
            r"from pathlib import Path\n",
            "import os\nfrom pathlib import Path\n\nimport dj_database_url\n",
        ),
        (r"SECRET_KEY = [^\n]*\n", 'SECRET_KEY = os.environ["SECRET_KEY"]\n'),
        (r"DEBUG = True\n", "DEBUG = False\n"),
        (r"ALLOWED_HOSTS = \[\]\n", 'ALLOWED_HOSTS = ["127.0.0.1", "localhost"]\n'),
        (
            r"DATABASES = \{\s*.default.: \{[^}]*\}\s*\}\n",
            "DATABASES = {'default': dj_database_url.config()}\n",
        ),
        (r"INSTALLED_APPS = \[\n", "INSTALLED_APPS = [\n    'greetings',\n"),
    ):
        text, count = re.subn(old, new, text, count=1)
        assert count == 1, f"startproject's settings.py has changed: no {old!r}"
    settings.write_text(text)
    urls = project / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text().replace(
            "urlpatterns = [\n",
            "from greetings.views import greeting\n\n"
            "urlpatterns = [\n    path('greetings/<int:pk>', greeting),\n",
        )
    )
    env = {"PATH": str(BIN_DIR), "SECRET_KEY": "x", "DATABASE_URL": "sqlite:///unused.sqlite3"}
    _run([sys.executable, "manage.py", "makemigrations", "greetings"], project, env)
    (project / "requirements.txt").write_text(
        "Django>=5.2,<7\npsycopg[binary]>=3.2,<4\ndj-database-url>=3,<4\n"
    )
    (project / "stackbench.toml").write_text(DJANGO_DECLARATION)
    (project / "scenarios.toml").write_text(DJANGO_SCENARIOS)
    return project


def notes_app(parent: Path, name: str = "notes") -> Path:
    """The Starlette service of docs/your-app.md (tests/your_app/notes), copied."""
    return Path(shutil.copytree(HERE / "notes", parent / name))


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}"


def middleware_copy(parent: Path) -> Path:
    """reference_apps/fastapi_sqla copied with one middleware of its own added to main.py
    (FastAPI's documented ``@app.middleware("http")``): every response says how long the
    app took. The copy keeps the declaration it was copied with."""
    copy = Path(shutil.copytree(ROOT / "reference_apps" / "fastapi_sqla", parent / "fastapi_timed"))
    main = copy / "main.py"
    text = main.read_text()
    assert "\nimport random\n" in text, "fastapi_sqla/main.py has changed: update this copy"
    main.write_text(
        text.replace("\nimport random\n", "\nimport random\nimport time\n", 1) + "\n\n"
        '@app.middleware("http")\n'
        "async def server_timing(request, call_next):\n"
        "    started = time.perf_counter()\n"
        "    response = await call_next(request)\n"
        "    spent = 1000 * (time.perf_counter() - started)\n"
        '    response.headers["Server-Timing"] = f"app;dur={spent:.2f}"\n'
        "    return response\n"
    )
    return copy
