#!/usr/bin/env python3
"""An SMS campaign engine in the style of the first incident's SmsQueueService.

Standard library only (Python 3.11). It speaks the Mitto-style bulk wire format to the
provider and keeps campaigns and messages in SQLite, so they survive a crash -- but, as
in the incident, the "already processed" guard is an in-memory set, counters are
incremented once per delivery report, and a campaign is complete when its counters say
so. A crash between the provider's acceptance and the commit loses the guard and the
message is sent again; a duplicated report counts twice.

ENGINE_FIXED=1 (or --fixed) turns on the corrected version: a message is marked
`submitting` durably before it is sent, one left `submitting` by a crash becomes
`unknown` and is never resent (it settles as failed UNKNOWN_OUTCOME, charged), reports
move a message's status once, and counters and completion are recounts of statuses.

Configuration (environment): ENGINE_PORT, ENGINE_DB, PROVIDER_URL, MITTO_API_KEY,
MITTO_TRAFFIC_ACCOUNT, WEBHOOK_TOKEN, PRICE (credits per message), UNKNOWN_SETTLE_MS.
"""

import json
import os
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

FIXED = os.environ.get("ENGINE_FIXED") == "1" or "--fixed" in sys.argv
PORT = int(os.environ.get("ENGINE_PORT", "8090"))
DB = os.environ.get("ENGINE_DB", "engine.db")
PROVIDER_URL = os.environ.get("PROVIDER_URL", "http://127.0.0.1:8091")
API_KEY = os.environ.get("MITTO_API_KEY", "key")
TRAFFIC_ACCOUNT = os.environ.get("MITTO_TRAFFIC_ACCOUNT", "ta")
WEBHOOK_TOKEN = os.environ.get("WEBHOOK_TOKEN", "token")
PRICE = int(os.environ.get("PRICE", "55"))
UNKNOWN_SETTLE_MS = int(os.environ.get("UNKNOWN_SETTLE_MS", "2000"))
SEND_RATE = float(os.environ.get("SEND_RATE", "0"))  # messages per second; 0: unlimited
BATCH = 20

LOCK = threading.Lock()
CONN = sqlite3.connect(DB, check_same_thread=False, isolation_level=None)
CONN.execute("PRAGMA journal_mode=WAL")
CONN.execute("PRAGMA synchronous=FULL")
CONN.executescript(
    """
    CREATE TABLE IF NOT EXISTS campaigns (
        id TEXT PRIMARY KEY, name TEXT, body TEXT, status TEXT,
        contact_count INTEGER, sent_count INTEGER DEFAULT 0, failed_count INTEGER DEFAULT 0,
        cost INTEGER DEFAULT 0);
    CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY, campaign TEXT, destination TEXT, body TEXT, status TEXT,
        provider_id TEXT, error TEXT, unknown_since REAL);
    CREATE INDEX IF NOT EXISTS by_status ON messages(status);
    CREATE INDEX IF NOT EXISTS by_provider_id ON messages(provider_id);
    """
)

# The incident's guard: lost with the process.
processed_messages = set()


def query(sql, args=()):
    with LOCK:
        return CONN.execute(sql, args).fetchall()


def transaction(statements):
    """Runs (sql, args) pairs in one transaction."""
    with LOCK:
        CONN.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                CONN.execute(sql, args)
            CONN.execute("COMMIT")
        except Exception:
            CONN.execute("ROLLBACK")
            raise


def campaign_view(campaign_id):
    rows = query(
        "SELECT id, name, status, contact_count, sent_count, failed_count, cost FROM campaigns WHERE id=?",
        (campaign_id,),
    )
    if not rows:
        return None
    cid, name, status, contacts, sent, failed, cost = rows[0]
    unknown_outcome = 0
    if FIXED:
        counts = dict(query("SELECT status, COUNT(*) FROM messages WHERE campaign=? GROUP BY status", (cid,)))
        sent = sum(counts.get(s, 0) for s in ("accepted", "delivered", "undelivered"))
        failed = counts.get("failed", 0)
        unknown_outcome = query(
            "SELECT COUNT(*) FROM messages WHERE campaign=? AND error='UNKNOWN_OUTCOME'", (cid,)
        )[0][0]
        pending = sum(counts.get(s, 0) for s in ("queued", "submitting", "unknown"))
        settled = contacts - pending
    else:
        settled = sent + failed
    progress = settled * 100 // contacts if contacts else 100
    return {
        "id": cid, "name": name, "status": status, "contactCount": contacts, "sentCount": sent,
        "failedCount": failed, "unknownOutcome": unknown_outcome, "progress": progress, "cost": cost,
    }


def check_completion(campaign_id):
    view = campaign_view(campaign_id)
    if view is None or view["status"] != "sending":
        return
    if FIXED:
        done = query(
            "SELECT COUNT(*) FROM messages WHERE campaign=? AND status IN ('queued','submitting','unknown')",
            (campaign_id,),
        )[0][0] == 0
    else:
        # The incident: completion decided from counters.
        done = view["sentCount"] + view["failedCount"] >= view["contactCount"]
    if done:
        transaction([("UPDATE campaigns SET status='completed' WHERE id=? AND status='sending'", (campaign_id,))])


def send_bulk(rows):
    """Posts one Mitto-style bulk request; returns the per-message results or raises."""
    body = {
        "messages": [
            {"trafficAccountId": TRAFFIC_ACCOUNT, "destination": dest, "sms": {"text": text, "sender": "SMSIM"}}
            for (_, _, dest, text) in rows
        ]
    }
    request = urllib.request.Request(
        PROVIDER_URL + "/api/v1.1/Messages/sendmessagesbulk",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "X-Mitto-API-Key": API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        results = json.loads(answer.read())["messages"]
    if len(results) != len(rows):
        raise ValueError("answer length differs from the request")
    return results


def record_results(rows, results):
    statements = []
    for (mid, cid, _, _), result in zip(rows, results):
        if result.get("messageId"):
            statements.append(
                ("UPDATE messages SET status='accepted', provider_id=? WHERE id=?", (result["messageId"], mid))
            )
            statements.append(("UPDATE campaigns SET cost=cost+? WHERE id=?", (PRICE, cid)))
        else:
            code = (result.get("error") or {}).get("code", "REJECTED")
            statements.append(("UPDATE messages SET status='failed', error=? WHERE id=?", (code, mid)))
            if not FIXED:
                statements.append(("UPDATE campaigns SET failed_count=failed_count+1 WHERE id=?", (cid,)))
    transaction(statements)


def claim():
    rows = query(
        "SELECT m.id, m.campaign, m.destination, m.body FROM messages m JOIN campaigns c ON c.id=m.campaign "
        "WHERE m.status='queued' AND c.status='sending' ORDER BY m.id LIMIT ?",
        (BATCH,),
    )
    if FIXED:
        # Durable before the request leaves: a crash after this never resends.
        transaction([("UPDATE messages SET status='submitting' WHERE id=? AND status='queued'", (r[0],)) for r in rows])
        return rows
    fresh = [r for r in rows if r[0] not in processed_messages]
    for r in fresh:
        processed_messages.add(r[0])
    return fresh


def process_queue_once():
    rows = claim()
    if not rows:
        return False
    try:
        results = send_bulk(rows)
    except urllib.error.HTTPError as error:
        # Refused before acceptance (5xx, 429): back to the queue.
        release(rows, unknown=False)
        time.sleep(0.5 if error.code != 429 else 2)
        return True
    except Exception:
        # No answer or a garbled one: the provider may have accepted.
        release(rows, unknown=True)
        return True
    record_results(rows, results)
    if SEND_RATE > 0:
        time.sleep(len(rows) / SEND_RATE)
    for cid in {r[1] for r in rows}:
        check_completion(cid)
    return True


def release(rows, unknown):
    if FIXED:
        status = "unknown" if unknown else "queued"
        transaction(
            [("UPDATE messages SET status=?, unknown_since=? WHERE id=?", (status, time.time(), r[0])) for r in rows]
        )
    else:
        for r in rows:
            processed_messages.discard(r[0])


def settle_unknown():
    """Corrected version only: unknowns past the settle delay fail as UNKNOWN_OUTCOME, charged."""
    cutoff = time.time() - UNKNOWN_SETTLE_MS / 1000
    rows = query("SELECT id, campaign FROM messages WHERE status='unknown' AND unknown_since < ?", (cutoff,))
    statements = []
    for mid, cid in rows:
        statements.append(("UPDATE messages SET status='failed', error='UNKNOWN_OUTCOME' WHERE id=?", (mid,)))
        statements.append(("UPDATE campaigns SET cost=cost+? WHERE id=?", (PRICE, cid)))
    if statements:
        transaction(statements)
    for cid in {r[1] for r in rows}:
        check_completion(cid)


def worker():
    while True:
        try:
            if FIXED:
                settle_unknown()
            if not process_queue_once():
                time.sleep(0.05)
        except Exception as error:  # keep the loop alive; the next round retries
            print("worker:", error, file=sys.stderr)
            time.sleep(0.2)


def apply_report(report):
    provider_id, status = report.get("messageId"), report.get("deliveryStatus")
    rows = query("SELECT id, campaign, status FROM messages WHERE provider_id=?", (provider_id,))
    if not rows:
        return
    mid, cid, current = rows[0]
    if status not in ("Delivered", "Failure"):
        return
    if FIXED:
        new = "delivered" if status == "Delivered" else "undelivered"
        transaction([("UPDATE messages SET status=? WHERE id=? AND status='accepted'", (new, mid))])
    else:
        # The incident: one increment per report, however many arrive.
        column = "sent_count" if status == "Delivered" else "failed_count"
        transaction([(f"UPDATE campaigns SET {column}={column}+1 WHERE id=?", (cid,))])
    check_completion(cid)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        parts = urlparse(self.path).path.strip("/").split("/")
        if parts == ["health"]:
            return self.answer(200, {"ok": True, "fixed": FIXED})
        if len(parts) == 2 and parts[0] == "campaigns":
            view = campaign_view(parts[1])
            return self.answer(200, view) if view else self.answer(404, {"error": "no such campaign"})
        return self.answer(404, {"error": "not found"})

    def do_POST(self):
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        if parts[:3] == ["v1", "webhooks", "mitto"]:
            if parse_qs(url.query).get("token", [""])[0] != WEBHOOK_TOKEN:
                self.read_json()
                return self.answer(401, {"error": "bad token"})
            reports = self.read_json()
            for report in reports if isinstance(reports, list) else [reports]:
                apply_report(report)
            return self.answer(200, {"ok": True})
        if parts == ["campaigns"]:
            return self.create_campaign(self.read_json())
        if len(parts) == 3 and parts[0] == "campaigns":
            self.read_json()
            return self.campaign_action(parts[1], parts[2])
        return self.answer(404, {"error": "not found"})

    def create_campaign(self, body):
        cid = "c_" + body["name"]
        contacts = body["contacts"]
        statements = [
            ("INSERT OR IGNORE INTO campaigns (id, name, body, status, contact_count) VALUES (?,?,?,?,?)",
             (cid, body["name"], body["body"], "draft", len(contacts)))
        ]
        for index, phone in enumerate(contacts):
            statements.append((
                "INSERT OR IGNORE INTO messages (id, campaign, destination, body, status) VALUES (?,?,?,?,?)",
                (f"{cid}:{index:06}", cid, phone, body["body"], "queued"),
            ))
        transaction(statements)
        self.answer(201, campaign_view(cid))

    def campaign_action(self, cid, action):
        moves = {"send": ("draft", "sending"), "pause": ("sending", "paused"), "resume": ("paused", "sending")}
        if action in moves:
            before, after = moves[action]
            transaction([("UPDATE campaigns SET status=? WHERE id=? AND status=?", (after, cid, before))])
        elif action == "cancel":
            transaction([
                ("UPDATE campaigns SET status='cancelled' WHERE id=? AND status IN ('draft','sending','paused')", (cid,)),
                ("UPDATE messages SET status='cancelled' WHERE campaign=? AND status='queued'", (cid,)),
            ])
        else:
            return self.answer(404, {"error": "no such action"})
        view = campaign_view(cid)
        return self.answer(200, view) if view else self.answer(404, {"error": "no such campaign"})


def main():
    if FIXED:
        # Whatever was in flight when the last process died may have been accepted.
        transaction([("UPDATE messages SET status='unknown', unknown_since=? WHERE status='submitting'", (time.time(),))])
    threading.Thread(target=worker, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
