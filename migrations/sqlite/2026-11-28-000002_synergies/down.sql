DROP TABLE synergies;
