-- Custom zones (named sets of communes). The administrative hierarchy comes from the reference files.
CREATE TABLE zones (
    code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE zone_communes (
    zone_code TEXT NOT NULL REFERENCES zones(code) ON DELETE CASCADE,
    commune_insee TEXT NOT NULL,
    PRIMARY KEY (zone_code, commune_insee)
);
CREATE INDEX zone_communes_by_commune ON zone_communes(commune_insee);

CREATE TABLE actors (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    siret TEXT UNIQUE,
    naf_code TEXT NOT NULL,
    address TEXT,
    commune_insee TEXT NOT NULL,
    departement TEXT NOT NULL,
    region TEXT NOT NULL,
    epci TEXT,
    lat DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng DOUBLE PRECISION NOT NULL CHECK (lng BETWEEN -180 AND 180),
    contact_name TEXT,
    contact_email TEXT,
    contact_phone TEXT,
    share_with_partners BOOLEAN NOT NULL DEFAULT FALSE,
    illustrative BOOLEAN NOT NULL DEFAULT FALSE,
    search_text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX actors_by_name ON actors(name, id);
CREATE INDEX actors_by_commune ON actors(commune_insee);
CREATE INDEX actors_by_departement ON actors(departement);
CREATE INDEX actors_by_region ON actors(region);
CREATE INDEX actors_by_epci ON actors(epci);
CREATE INDEX actors_by_naf ON actors(naf_code);

CREATE TABLE resources (
    id TEXT PRIMARY KEY NOT NULL,
    actor_id TEXT NOT NULL REFERENCES actors(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('offer', 'need')),
    category TEXT NOT NULL,
    class TEXT NOT NULL,
    label TEXT NOT NULL,
    description TEXT,
    ewc_code TEXT,
    hazardous BOOLEAN NOT NULL DEFAULT FALSE,
    accepted_ewc TEXT NOT NULL DEFAULT '[]',
    quantity_value DOUBLE PRECISION,
    quantity_unit TEXT,
    quantity_period TEXT,
    yearly_quantity DOUBLE PRECISION,
    base_unit TEXT,
    availability TEXT NOT NULL,
    months INTEGER NOT NULL,
    available_from DATE,
    available_until DATE,
    temperature_c DOUBLE PRECISION,
    max_distance_km DOUBLE PRECISION,
    physical_state TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX resources_by_actor ON resources(actor_id);
CREATE INDEX resources_by_kind_class ON resources(kind, class);
CREATE INDEX resources_by_kind_category ON resources(kind, category);
CREATE INDEX resources_by_ewc ON resources(ewc_code);
