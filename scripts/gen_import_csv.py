#!/usr/bin/env python3
"""Writes an import CSV (docs/IMPORT.md) of N rows over real communes, for measuring bulk import.

usage: scripts/gen_import_csv.py N OUT.csv [REFERENCE_DIR]
Five resources per actor, actors spread over the communes of the reference file, valid SIRETs.
"""
import csv
import random
import sys


def luhn_ok(s):
    total = 0
    for i, c in enumerate(reversed(s)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def siret(n):
    head = f"9{n:012d}"
    return next(head + str(d) for d in range(10) if luhn_ok(head + str(d)))


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    ref = sys.argv[3] if len(sys.argv) > 3 else "../shared/reference"
    with open(f"{ref}/geo/fr_communes.csv", newline="", encoding="utf-8") as f:
        communes = sorted({r["insee_com"] for r in csv.DictReader(f) if r["commune_type"] == "COM"})
    rng = random.Random(42)
    resources = [
        ("offer", "material", "Sciures et copeaux", "030105", "t"),
        ("offer", "material", "Cendres volantes", "100102", "t"),
        ("need", "energy", "Chaleur process", "", "MWh"),
        ("offer", "material", "Ferrailles", "120101", "t"),
        ("need", "material", "Granulats recyclés", "", "t"),
    ]
    naf = ["16.10A", "23.51Z", "10.51C", "24.51Z", "08.12Z", "38.21Z"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["actor_ref", "actor_name", "siret", "naf_code", "commune_insee",
                    "kind", "category", "label", "ewc_code", "quantity", "unit", "period"])
        for i in range(n):
            a = i // 5
            kind, cat, label, ewc, unit = resources[i % 5]
            w.writerow([f"a{a}", f"Établissement {a}", siret(a), naf[a % len(naf)], communes[a % len(communes)],
                        kind, cat, label, ewc, round(rng.lognormvariate(4, 1), 2), unit, "year"])


if __name__ == "__main__":
    main()
