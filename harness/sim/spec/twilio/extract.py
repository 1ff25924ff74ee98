#!/usr/bin/env python3
"""Takes the Messages part of Twilio's published OpenAPI document into this directory.

    python3 extract.py path/to/twilio-oai/spec/json/twilio_api_v2010.json COMMIT

Keeps, verbatim, the paths `/2010-04-01/Accounts/{AccountSid}/Messages.json` and
`/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json` and every component schema they
reach, and writes `messages.json`. Nothing is edited by hand: rerun it to update.
"""
import json
import sys

source, commit = sys.argv[1], sys.argv[2]
spec = json.load(open(source))
paths = {
    name: spec["paths"][name]
    for name in ["/2010-04-01/Accounts/{AccountSid}/Messages.json", "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"]
}
schemas = spec["components"]["schemas"]
wanted, todo = set(), [paths]
while todo:
    node = todo.pop()
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in wanted:
                wanted.add(name)
                todo.append(schemas[name])
        todo.extend(node.values())
    elif isinstance(node, list):
        todo.extend(node)
subset = {
    "openapi": spec["openapi"],
    "info": spec["info"],
    "x-source": f"github.com/twilio/twilio-oai @ {commit}, spec/json/twilio_api_v2010.json (MIT, see LICENSE)",
    "paths": paths,
    "components": {"schemas": {name: schemas[name] for name in sorted(wanted)}},
}
json.dump(subset, open("messages.json", "w"), indent=1, sort_keys=True)
print(f"{len(paths)} paths, {len(wanted)} schemas")
