#!/usr/bin/env python3
"""Sanity check before the load: GET /m/lookup for the first N queries, one connection.
Prints JSON: statuses, answers with at least one match, and banks seen.

    python lookup_check.py URL KEY QUERIES.txt N
"""
import http.client
import json
import sys
import urllib.parse

url, key, queries, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
statuses, matched, banks, bad = {}, 0, {}, []
with open(queries) as f:
    hexes = [line.strip() for line in f if line.strip()][:n]
for h in hexes:
    conn.request("GET", f"/m/lookup?signal_type=pdq&signal={h}", headers={"Authorization": f"Bearer {key}"})
    r = conn.getresponse()
    body = r.read()
    statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    try:
        doc = json.loads(body)
    except ValueError:
        bad.append(body[:100].decode(errors="replace"))
        continue
    if r.status == 200 and doc:
        matched += 1
        for bank, rows in doc.items():
            banks[bank] = banks.get(bank, 0) + len(rows)
print(json.dumps({"queries": len(hexes), "statuses": statuses, "with_matches": matched,
                  "match_rows_by_bank": banks, "unparsable": bad[:5]}))
