"""The reference pair: measured in every CI bench job beside that job's own pairs.

Numbers from different runs (different machines, or one machine at different times) are
compared only as ratios to this pair measured in the same run and scenario (docs/ci.md).

gino_style @ uvicorn, because it is the cheapest stable yardstick: the thinnest stack
(Starlette + SQLAlchemy Core on a raw asyncpg pool) under the plainest production ASGI
server (uvicorn, uvloop, no arbiter, no green-thread patching), with the fewest
dependencies to install beside any other app and servers, and the narrowest spread in
this project's own runs.

Plain constants, no imports: ``.github/scripts/bench_matrix.py`` reads this file with the
standard library before anything is installed.
"""

REFERENCE_APP = "gino_style"
REFERENCE_SERVER = "uvicorn"
REFERENCE_PAIR = f"{REFERENCE_APP} @ {REFERENCE_SERVER}"
