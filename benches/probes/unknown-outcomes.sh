#!/usr/bin/env bash
# Ambiguous submissions vs UNKNOWN_OUTCOMEs left, per provider kind and store: smsim live
# with three kills between the provider's acceptance and the engine's commit (nothing else),
# seeds 1-3, on SQLite for the Mitto, Twilio and Infobip wires and on PostgreSQL (four
# processes, a killed one drawn per fault) for Mitto. "ambiguous" counts the messages the
# held requests had accepted. Needs target/debug/smsim (cargo build -p smsim) and, for
# PostgreSQL, the server binaries (.ci/postgres installs them).
set -u
cd "$(dirname "$0")/../.."
smsim=target/debug/smsim
run() { # label scenario profile extra...
  local label=$1 scenario=$2 profile=$3; shift 3
  for seed in 1 2 3; do
    local dir=${PROBE_DIR:-/tmp/smsim-probe}/$label-$seed
    rm -rf $dir
    $smsim live harness/live/scenarios/$scenario --engine harness/live/engines/$profile --workdir $dir --seed $seed \
      --kills 0 --pauses 0 --kills-on-accept 3 --json $dir.json "$@" >/dev/null 2>&1
    python3 - "$label" "$seed" "$dir" <<'PY'
import json, sys
label, seed, d = sys.argv[1:]
r = json.load(open(d + ".json"))
amb = sum(json.loads(l).get("accepted", 0) for l in open(d + "/trace.jsonl") if '"kill_between_accept_and_commit"' in l)
c = r["campaigns"][0]["last"]
print(f"{label}\tseed {seed}\tpassed {r['violations'] == []}\tkills-on-accept {r['fired']['kills_between_accept_and_commit']}\tambiguous {amb}\tUNKNOWN_OUTCOME {c.get('unknown_outcome')}\tfailed {c['failed']}\tduplicates {r['duplicate_acceptances']}")
PY
  done
}
mkdir -p ${PROBE_DIR:-/tmp/smsim-probe}
run mitto-sqlite short.toml smsim-serve.toml
run twilio-sqlite short-twilio.toml smsim-serve-twilio.toml
run infobip-sqlite short-infobip.toml smsim-serve-infobip.toml
run mitto-postgres short.toml smsim-serve-postgres.toml --target random
