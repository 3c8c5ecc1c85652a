-- The one schema every reference app serves (contract section 1).
-- The harness applies this file. Each app's own migrations create the same tables (not
-- stackbench_seed, the harness's own); tests/apps/test_migrations.py holds them equal.
-- Idempotent: safe to apply to a database that already has the tables.

CREATE TABLE IF NOT EXISTS world (
    id           integer PRIMARY KEY,
    randomnumber integer NOT NULL
);

CREATE TABLE IF NOT EXISTS fortune (
    id      integer PRIMARY KEY,
    message varchar(2048) NOT NULL
);

CREATE TABLE IF NOT EXISTS location (
    id      serial PRIMARY KEY,
    line_1  varchar(50) NOT NULL,
    line_2  varchar(50) NOT NULL,
    line_3  varchar(50) NOT NULL,
    zipcode varchar(10) NOT NULL
);

CREATE TABLE IF NOT EXISTS performer (
    id            serial PRIMARY KEY,
    stage_name    varchar(100) NOT NULL,
    kind          varchar(10)  NOT NULL CHECK (kind IN ('clown', 'acrobat')),
    concentration varchar(50)  NOT NULL
);

CREATE TABLE IF NOT EXISTS troupe (
    id   serial PRIMARY KEY,
    name varchar(100) NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS troupe_member (
    troupe_id    integer NOT NULL REFERENCES troupe (id) ON DELETE CASCADE,
    performer_id integer NOT NULL REFERENCES performer (id) ON DELETE CASCADE,
    PRIMARY KEY (troupe_id, performer_id)
);
-- The PK serves lookups by troupe; members are also looked up by performer.
CREATE INDEX IF NOT EXISTS troupe_member_performer_idx ON troupe_member (performer_id);

CREATE TABLE IF NOT EXISTS college (
    id          serial PRIMARY KEY,
    name        varchar(100) NOT NULL,
    location_id integer NOT NULL REFERENCES location (id),
    troupe_id   integer NOT NULL REFERENCES troupe (id)
);
CREATE INDEX IF NOT EXISTS college_location_idx ON college (location_id);
CREATE INDEX IF NOT EXISTS college_troupe_idx ON college (troupe_id);

-- Written by the seed, read by `verify`: proves the data is still what was seeded.
CREATE TABLE IF NOT EXISTS stackbench_seed (
    id         integer PRIMARY KEY CHECK (id = 1),
    scale      integer NOT NULL,
    checksum   text NOT NULL,
    seeded_at  timestamptz NOT NULL DEFAULT now()
);
