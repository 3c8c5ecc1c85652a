"""What every reference app and every benchmark stands on: schema, seed, database, upstream.

Modules: ``schema.sql`` (the tables), ``seed`` (deterministic data and its checksum), ``db``
(embedded PostgreSQL or DATABASE_URL), ``upstream`` (the slow HTTP service), ``processes``
and ``net`` (children that are always stopped, loopback ports), ``conformance`` (the pytest
suite that judges any app by URL).
"""
