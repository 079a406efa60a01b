-- Territorial material flow accounts (AFME): one tidy row per territory, year, flow, family,
-- partner and unit (see src/afme/model.rs for the vocabulary).
-- `partner` is '' when the row names no partner (not NULL), so that the UNIQUE key below also holds
-- for rows without partner on both backends (NULLs are distinct in a UNIQUE constraint).
-- `position` keeps the order of the imported file: indicators and reconciliation constraints refer
-- to rows by their index in that order.
CREATE TABLE afme_rows (
    id TEXT PRIMARY KEY NOT NULL,
    territory TEXT NOT NULL,
    year INTEGER NOT NULL CHECK (year BETWEEN 1900 AND 2100),
    position INTEGER NOT NULL,
    flow TEXT NOT NULL,
    family TEXT NOT NULL,
    partner TEXT NOT NULL DEFAULT '',
    value DOUBLE NOT NULL CHECK (value >= 0),
    unit TEXT NOT NULL CHECK (unit IN ('t', 'MWh')),
    uncertainty_kind TEXT CHECK (uncertainty_kind IN ('sd', 'percent')),
    uncertainty DOUBLE CHECK (uncertainty >= 0),
    source TEXT,
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    CHECK ((uncertainty_kind IS NULL) = (uncertainty IS NULL)),
    UNIQUE (territory, year, flow, family, partner, unit)
);
CREATE INDEX afme_rows_by_territory_year ON afme_rows(territory, year, position);

-- Population of a territory for one year, overriding the reference communes' population (e.g. the
-- legal population of the account's year rather than the latest census).
CREATE TABLE afme_population (
    territory TEXT NOT NULL,
    year INTEGER NOT NULL CHECK (year BETWEEN 1900 AND 2100),
    population BIGINT NOT NULL CHECK (population > 0),
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (territory, year)
);
