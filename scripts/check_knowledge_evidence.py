#!/usr/bin/env python3
"""Check the evidence knowledge files against the reference nomenclatures.

Files checked (relative to the repository root):
  knowledge/evidence_eip_exchanges.csv   eco-industrial park exchanges coded to NACE/EWC/classes
  knowledge/evidence_epa_rei.csv         US EPA REI 2012 use of recycled commodities by NACE division
                                         (ewc_codes may be empty for product commodities: fuels, compost)
  knowledge/sector_inputs.csv            input profiles of receiving activities (published sources)

Reference data:
  ../shared/reference/ewc/list_of_waste.csv     (List of Waste, 842 codes)
  ../shared/reference/naf/nace_rev2_en_fr.csv   (NACE rev.2 divisions, groups, classes)
  knowledge/resource_classes.csv                (resource class ids)
The shared folder can be moved with the SHARED_DIR environment variable.

Checks: exact header, required columns filled, every EWC code in the LoW, every NACE code in
NACE rev.2 at the level its format implies (and at the level the column demands), every class id
known, numeric tonnes, no duplicate rows. Prints counts per file; exits 1 on any problem.
Standard library only.
"""
import csv
import os
import re
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))
LOW_PATH = os.path.join(SHARED, "reference", "ewc", "list_of_waste.csv")
NACE_PATH = os.path.join(SHARED, "reference", "naf", "nace_rev2_en_fr.csv")
CLASSES_PATH = os.path.join(ROOT, "knowledge", "resource_classes.csv")

EIP_PATH = os.path.join(ROOT, "knowledge", "evidence_eip_exchanges.csv")
REI_PATH = os.path.join(ROOT, "knowledge", "evidence_epa_rei.csv")
INPUTS_PATH = os.path.join(ROOT, "knowledge", "sector_inputs.csv")

EIP_COLS = ["eip", "supplier", "accepter", "transaction", "kind", "supplier_nace",
            "receiver_nace", "ewc_code", "class", "rationale", "source", "same_site_case"]
# Parks of the same site and literature as a case of the case base (SOURCE.md of the EIPs package):
# their rows name that case, so that cross-validation leaves them out with it.
SAME_SITE_CASES = {"Chamusca": "3", "FinnishForest": "2", "Guitang": "10", "Norrkoping": "27",
                   "Ulsan": "8"}
REI_COLS = ["recycled_commodity_code", "recycled_commodity", "receiver_nace_division", "tonnes",
            "ewc_codes", "classes", "rationale", "source"]
INPUTS_COLS = ["naf", "label_en", "label_fr", "ewc_codes", "classes", "source"]

PROBLEMS = []


def problem(fname, line, msg):
    PROBLEMS.append("%s:%s: %s" % (os.path.basename(fname), line, msg))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows = [row for row in reader]
    return header, rows


def load_low():
    low = {}
    with open(LOW_PATH, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            low[r["code"].strip()] = r["hazardous"].strip().lower() == "true"
    return low


def load_nace():
    nace = {}
    with open(NACE_PATH, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            nace[r["code"].strip()] = r["level"].strip()
    return nace


def load_classes():
    with open(CLASSES_PATH, newline="", encoding="utf-8") as f:
        return {r["class"].strip() for r in csv.DictReader(f)}


def nace_level_of(code):
    if re.fullmatch(r"\d{2}", code):
        return "division"
    if re.fullmatch(r"\d{2}\.\d", code):
        return "group"
    if re.fullmatch(r"\d{2}\.\d{2}", code):
        return "class"
    return None


def check_nace(fname, line, col, code, nace, allowed_levels=("division", "group", "class")):
    lvl = nace_level_of(code)
    if lvl is None:
        problem(fname, line, "%s %r is not a NACE division/group/class code" % (col, code))
    elif code not in nace:
        problem(fname, line, "%s %r not in NACE rev.2 reference" % (col, code))
    elif nace[code] != lvl:
        problem(fname, line, "%s %r is a %s in the reference, format says %s" % (col, code, nace[code], lvl))
    elif lvl not in allowed_levels:
        problem(fname, line, "%s %r is a %s; expected %s" % (col, code, lvl, "/".join(allowed_levels)))


def check_ewc(fname, line, col, code, low):
    if not re.fullmatch(r"\d{6}", code):
        problem(fname, line, "%s %r is not a 6-digit EWC code" % (col, code))
    elif code not in low:
        problem(fname, line, "%s %r not in the List of Waste" % (col, code))


def check_header(fname, header, expected):
    if header != expected:
        problem(fname, 1, "header %r != expected %r" % (header, expected))
        return False
    return True


def check_common(fname, header, rows, required):
    """Row width, required cells, duplicate rows. Yields (line, dict)."""
    seen = {}
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            problem(fname, i, "has %d cells, header has %d" % (len(row), len(header)))
            continue
        d = dict(zip(header, row))
        for col in required:
            if not d[col].strip():
                problem(fname, i, "required column %r is empty" % col)
        for col, v in d.items():
            if v != v.strip():
                problem(fname, i, "column %r has leading/trailing spaces" % col)
        key = tuple(c.strip() for c in row)
        if key in seen:
            problem(fname, i, "duplicate of line %d" % seen[key])
        else:
            seen[key] = i
        yield i, d


def split_codes(s):
    return [c for c in s.split(" ") if c != ""] if s else []


def check_list_cell(fname, line, col, value):
    if value and (value != " ".join(split_codes(value))):
        problem(fname, line, "%s must be single-space separated: %r" % (col, value))
    codes = split_codes(value)
    dup = [c for c, n in Counter(codes).items() if n > 1]
    if dup:
        problem(fname, line, "%s repeats %s" % (col, " ".join(dup)))
    return codes


def check_eip(low, nace, classes):
    fname = EIP_PATH
    header, rows = read_csv(fname)
    if not check_header(fname, header, EIP_COLS):
        return
    required = [c for c in EIP_COLS if c not in ("ewc_code", "same_site_case")]
    n = hazardous = with_ewc = 0
    kinds = Counter()
    eips = Counter()
    for line, d in check_common(fname, header, rows, required):
        n += 1
        kinds[d["kind"]] += 1
        eips[d["eip"]] += 1
        if d["same_site_case"] != SAME_SITE_CASES.get(d["eip"], ""):
            problem(fname, line, "park %r must name same_site_case %r, not %r" % (
                d["eip"], SAME_SITE_CASES.get(d["eip"], ""), d["same_site_case"]))
        if d["kind"] not in ("by_product", "product", "utility"):
            problem(fname, line, "kind %r not in by_product/product/utility" % d["kind"])
        for col in ("supplier_nace", "receiver_nace"):
            if d[col]:
                check_nace(fname, line, col, d[col], nace)
        e = d["ewc_code"]
        if e:
            with_ewc += 1
            check_ewc(fname, line, "ewc_code", e, low)
            if low.get(e):
                hazardous += 1
        if d["class"] and d["class"] not in classes:
            problem(fname, line, "class %r not in resource_classes.csv" % d["class"])
        if d["class"].startswith("energy/") and e:
            problem(fname, line, "energy flow %r should not carry an EWC code" % d["class"])
    print("%s: %d rows (%s), %d with an EWC code, %d with a hazardous EWC code; parks: %s" % (
        os.path.relpath(fname, ROOT), n,
        ", ".join("%s %d" % kv for kv in sorted(kinds.items())), with_ewc, hazardous,
        ", ".join("%s %d" % kv for kv in sorted(eips.items()))))
    return n


def check_rei(low, nace, classes):
    fname = REI_PATH
    header, rows = read_csv(fname)
    if not check_header(fname, header, REI_COLS):
        return
    n = 0
    pairs = {}
    commodities = Counter()
    tonnes = Counter()
    no_ewc = 0
    required = [c for c in REI_COLS if c != "ewc_codes"]
    for line, d in check_common(fname, header, rows, required):
        n += 1
        if not d["ewc_codes"]:
            no_ewc += 1
        commodities[d["recycled_commodity_code"]] += 1
        if not re.fullmatch(r"RD\d{4}[a-z]?", d["recycled_commodity_code"]):
            problem(fname, line, "recycled_commodity_code %r is not RDnnnn[a-z]" % d["recycled_commodity_code"])
        if d["receiver_nace_division"]:
            check_nace(fname, line, "receiver_nace_division", d["receiver_nace_division"], nace,
                       allowed_levels=("division",))
        try:
            t = float(d["tonnes"])
            if t <= 0:
                problem(fname, line, "tonnes must be > 0")
            tonnes[d["recycled_commodity_code"]] += t
        except ValueError:
            problem(fname, line, "tonnes %r is not a number" % d["tonnes"])
        for c in check_list_cell(fname, line, "ewc_codes", d["ewc_codes"]):
            check_ewc(fname, line, "ewc_codes", c, low)
        for c in check_list_cell(fname, line, "classes", d["classes"]):
            if c not in classes:
                problem(fname, line, "class %r not in resource_classes.csv" % c)
        key = (d["recycled_commodity_code"], d["receiver_nace_division"])
        if key in pairs:
            problem(fname, line, "commodity/division pair repeats line %d" % pairs[key])
        pairs[key] = line
        if not d["source"].startswith("US EPA Recycling Economic Information 2012"):
            problem(fname, line, "source does not cite US EPA REI 2012")
    print("%s: %d rows (%d without EWC codes: products such as fuels, compost, reused equipment), "
          "%d recycled commodities, %d receiving divisions, %.0f t in all" % (
              os.path.relpath(fname, ROOT), n, no_ewc, len(commodities),
              len({k[1] for k in pairs}), sum(tonnes.values())))
    return n


def check_inputs(low, nace, classes):
    fname = INPUTS_PATH
    header, rows = read_csv(fname)
    if not check_header(fname, header, INPUTS_COLS):
        return
    required = ["naf", "label_en", "label_fr", "classes", "source"]
    n = 0
    codes_total = 0
    nafs = Counter()
    for line, d in check_common(fname, header, rows, required):
        n += 1
        nafs[d["naf"]] += 1
        if d["naf"]:
            check_nace(fname, line, "naf", d["naf"], nace)
        ewcs = check_list_cell(fname, line, "ewc_codes", d["ewc_codes"])
        codes_total += len(ewcs)
        for c in ewcs:
            check_ewc(fname, line, "ewc_codes", c, low)
        cls = check_list_cell(fname, line, "classes", d["classes"])
        for c in cls:
            if c not in classes:
                problem(fname, line, "class %r not in resource_classes.csv" % c)
        # heat, water and gases are outside the List of Waste; any other input needs EWC codes
        if not ewcs and not all(c.startswith(("energy/", "water/")) or c == "material/chemical/gas"
                                for c in cls):
            problem(fname, line, "material input without any EWC code")
    print("%s: %d rows, %d activities, %d EWC code references" % (
        os.path.relpath(fname, ROOT), n, len(nafs), codes_total))
    return n


def main():
    low = load_low()
    nace = load_nace()
    classes = load_classes()
    print("reference: %d EWC codes (%d hazardous), %d NACE codes, %d resource classes" % (
        len(low), sum(low.values()), len(nace), len(classes)))
    for path, fn in ((EIP_PATH, check_eip), (REI_PATH, check_rei), (INPUTS_PATH, check_inputs)):
        if not os.path.exists(path):
            problem(path, 0, "file missing")
            continue
        before = len(PROBLEMS)
        if fn(low, nace, classes) == 0 and len(PROBLEMS) == before:
            problem(path, 0, "no data rows")
    if PROBLEMS:
        print("%d problem(s):" % len(PROBLEMS))
        for p in PROBLEMS:
            print("  " + p)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
