DROP TABLE resources;
DROP TABLE actors;
DROP TABLE zone_communes;
DROP TABLE zones;
