DROP TABLE afme_population;
DROP TABLE afme_rows;
