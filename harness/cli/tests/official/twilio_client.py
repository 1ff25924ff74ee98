"""Twilio's official Python client (twilio-python, pinned in .ci/official-clients) against
`smsim provider`: what a team's own integration tests would do with the simulated Twilio.

    python twilio_client.py BASE_URL ACCOUNT_SID AUTH_TOKEN

Prints one line per check and exits 0 only if every check passed.
"""
import datetime
import http.server
import json
import sys
import threading
import time
import urllib.parse

from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

base, account_sid, auth_token = sys.argv[1:4]
SERVICE = "MG" + "0" * 31 + "1"
FROM = "+15005550006"

callbacks = []
refused_callbacks = []
FINAL = ("delivered", "undelivered", "failed")


class Callbacks(http.server.BaseHTTPRequestHandler):
    """Receives status callbacks and validates each with the official RequestValidator."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
        valid = RequestValidator(auth_token).validate(url, params, self.headers.get("X-Twilio-Signature", ""))
        if self.path.startswith("/down"):
            # An application that is down: Twilio does not retry an HTTP error by default.
            refused_callbacks.append((params["MessageSid"], params["MessageStatus"]))
            self.send_response(503)
        else:
            callbacks.append((params, valid))
            self.send_response(200 if valid else 403)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Callbacks)
threading.Thread(target=server.serve_forever, daemon=True).start()
status_callback = f"http://127.0.0.1:{server.server_address[1]}/status?campaign=1"

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + str(detail)}", flush=True)


def client(token=auth_token):
    made = Client(account_sid, token)
    made.api.base_url = base
    return made


twilio = client()

sent = twilio.messages.create(to="+306910000001", from_=FROM, body="hello", status_callback=status_callback)
check("create with From", len(sent.sid) == 34 and sent.sid.startswith("SM") and sent.status == "queued"
      and sent.from_ == FROM and sent.num_segments == "1" and sent.date_created is not None, vars(sent))

pooled = twilio.messages.create(to="+306910000001", messaging_service_sid=SERVICE, body="via service",
                                status_callback=status_callback)
check("create with MessagingServiceSid", pooled.status == "accepted" and pooled.from_ is None
      and pooled.messaging_service_sid == SERVICE, vars(pooled))

fetched = twilio.messages(sent.sid).fetch()
check("fetch by SID", fetched.sid == sent.sid and fetched.body == "hello" and fetched.to == "+306910000001",
      vars(fetched))

for n in range(5):
    twilio.messages.create(to="+306910000002", from_=FROM, body=f"page {n}")
listed = twilio.messages.list(to="+306910000002", page_size=2)
check("list across pages", sorted(m.body for m in listed) == [f"page {n}" for n in range(5)],
      [m.body for m in listed])
mine = twilio.messages.list(to="+306910000001", from_=FROM)
check("list filtered by From", [m.sid for m in mine] == [sent.sid], [m.sid for m in mine])
day = fetched.date_created  # date_sent stays empty until the message is sent
that_day = twilio.messages.list(to="+306910000002", date_sent=day.date(), page_size=2)
check("list filtered by DateSent across pages", len(that_day) == 5, [m.date_sent for m in that_day])
before = twilio.messages.list(to="+306910000002", date_sent_before=day - datetime.timedelta(days=1))
after = twilio.messages.list(to="+306910000002", date_sent_after=day - datetime.timedelta(seconds=1))
check("list filtered by DateSent< and DateSent>", (len(before), len(after)) == (0, 5), (len(before), len(after)))


def refused(name, code, status, call):
    try:
        call()
    except TwilioRestException as error:
        check(name, error.code == code and error.status == status, f"code {error.code}, status {error.status}")
    else:
        check(name, False, "no TwilioRestException")


refused("invalid To: 21211", 21211, 400, lambda: twilio.messages.create(to="6910000001", from_=FROM, body="x"))
refused("no From: 21603", 21603, 400, lambda: twilio.messages.create(to="+306910000001", body="x"))
refused("body over 1600: 21617", 21617, 400,
        lambda: twilio.messages.create(to="+306910000001", from_=FROM, body="x" * 1601))
refused("wrong auth token: 20003", 20003, 401,
        lambda: client("wrong").messages.create(to="+306910000001", from_=FROM, body="x"))
refused("unknown SID: 20404", 20404, 404, lambda: twilio.messages("SM" + "0" * 32).fetch())

down = twilio.messages.create(to="+306910000002", from_=FROM, body="to an application that is down",
                              status_callback=f"http://127.0.0.1:{server.server_address[1]}/down")

deadline = time.time() + 20
while time.time() < deadline and len({p["MessageSid"] for p, _ in callbacks if p.get("MessageStatus") in FINAL}) < 2:
    time.sleep(0.1)
finals = [(p, v) for p, v in callbacks if p.get("MessageStatus") in FINAL]
check("status callbacks arrived", len({p["MessageSid"] for p, _ in finals}) == 2, callbacks)
check("every callback passes RequestValidator", callbacks and all(v for _, v in callbacks),
      [p for p, v in callbacks if not v])
documented = {"AccountSid", "ApiVersion", "MessageSid", "MessageStatus", "SmsSid", "SmsStatus", "To", "From"}
check("callbacks carry the documented fields", all(documented <= set(p) for p, _ in finals),
      [sorted(set(p)) for p, _ in finals])
check("a messaging service's callback names it and its pool sender",
      any(p.get("MessagingServiceSid") == SERVICE and p.get("From", "").startswith("+") for p, _ in finals), finals)

# Twilio's default connection overrides (rc=1, rp=ct) retry a failed connection, never an
# HTTP error: a callback answered 503 comes once. A retry would come a second later.
while time.time() < deadline and not any(status in FINAL for _, status in refused_callbacks):
    time.sleep(0.1)
time.sleep(2.5)
check("a callback answered 503 is not retried", refused_callbacks
      and len(refused_callbacks) == len(set(refused_callbacks)) and all(sid == down.sid for sid, _ in refused_callbacks),
      refused_callbacks)

print(json.dumps({"checks": len(results), "failed": results.count(False)}))
server.shutdown()
sys.exit(0 if all(results) else 1)
