#!/usr/bin/env python3
"""Writes an import CSV (docs/IMPORT.md) of N rows that are all bad, for measuring what a refused
import costs (memory, size of the 422 answer).

usage: scripts/gen_bad_import_csv.py N OUT.csv
Each row is its own actor in Dijon with two bad cells (lat, lng): 1.25 million rows make 59 MB
and 2.5 million errors.
"""
import sys


def main():
    n = int(sys.argv[1])
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        out.write("actor_ref,actor_name,naf_code,commune_insee,lat,lng\n")
        for i in range(n):
            out.write(f"a{i},Scierie {i},16.10A,21231,north,east\n")


if __name__ == "__main__":
    main()
