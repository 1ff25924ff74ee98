"""Infobip's official Python client (infobip-api-python-client, pinned in
.ci/official-clients), whose models are generated from Infobip's OpenAPI document, against
`smsim provider`: every answer and every pushed report of the simulated Infobip must load
into the model the specification gives it, with nothing the specification lacks.

    python infobip_models.py BASE_URL API_KEY

Prints one line per check and a JSON summary, and exits 0 only if every check passed.
"""
import http.server
import json
import sys
import threading
import time

from infobip_api_client.api.sms_api import SmsApi
from infobip_api_client.api_client import ApiClient
from infobip_api_client.configuration import Configuration
from infobip_api_client.models.sms_advanced_textual_request import SmsAdvancedTextualRequest
from infobip_api_client.models.sms_delivery_result import SmsDeliveryResult
from infobip_api_client.models.sms_destination import SmsDestination
from infobip_api_client.models.sms_logs_response import SmsLogsResponse
from infobip_api_client.models.sms_response import SmsResponse
from infobip_api_client.models.sms_textual_message import SmsTextualMessage

base, api_key = sys.argv[1:3]
passed, failed = 0, 0
pushed = []


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what} {detail}")


def unknown_keys(raw, loaded, path=""):
    """The keys of `raw` (with a value) that the loaded model dropped: fields the
    specification does not define."""
    found = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            if value is None:
                continue
            if not isinstance(loaded, dict) or key not in loaded:
                found.append(f"{path}{key}")
            else:
                found += unknown_keys(value, loaded[key], f"{path}{key}.")
    elif isinstance(raw, list) and isinstance(loaded, list):
        for index, (item, back) in enumerate(zip(raw, loaded)):
            found += unknown_keys(item, back, f"{path}{index}.")
    return found


def holds(model, raw, what):
    """`raw` loads into `model` (types as the specification says) with no field it lacks."""
    try:
        loaded = model.from_dict(raw)
    except Exception as error:  # pydantic's ValidationError, or a malformed date
        check(False, f"{what} loads into {model.__name__}", repr(error)[:400])
        return None
    extra = unknown_keys(raw, loaded.to_dict())
    check(not extra, f"{what} loads into {model.__name__}, every field specified", f"unspecified: {extra}")
    return loaded


class Reports(http.server.BaseHTTPRequestHandler):
    """Receives pushed delivery reports."""

    def do_POST(self):
        pushed.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Reports)
threading.Thread(target=server.serve_forever, daemon=True).start()
notify_url = f"http://127.0.0.1:{server.server_address[1]}/reports"

configuration = Configuration(host=base, api_key={"APIKeyHeader": api_key}, api_key_prefix={"APIKeyHeader": "App"})
api = SmsApi(ApiClient(configuration))


def raw(response):
    return json.loads(response.data)


# A bulk with a notifyUrl (reports pushed) and one without (reports pulled); Greek text
# makes a two-part UCS-2 message.
pushed_request = SmsAdvancedTextualRequest(
    messages=[
        SmsTextualMessage(
            destinations=[SmsDestination(to="306912340001"), SmsDestination(to="306912340002")],
            var_from="InfoSMS",
            text="Καλημέρα " * 10,
            notify_url=notify_url,
            callback_data="order-7",
        )
    ]
)
pulled_request = SmsAdvancedTextualRequest(
    messages=[SmsTextualMessage(destinations=[SmsDestination(to="306912340003")], text="hello")]
)
sent = holds(SmsResponse, raw(api.send_sms_message_without_preload_content(pushed_request)), "a send's answer")
pulled = holds(SmsResponse, raw(api.send_sms_message_without_preload_content(pulled_request)), "a send's answer")
typed = api.send_sms_message(pulled_request)
check(isinstance(typed, SmsResponse) and len(typed.messages) == 1, "the client reads a send's answer as SmsResponse")

# Bounded: the simulated reports fall due within a few seconds.
deadline = time.monotonic() + 30
while len(pushed) < 1 and time.monotonic() < deadline:
    time.sleep(0.2)
check(len(pushed) >= 1, "a pushed report arrived", f"{len(pushed)} webhooks")
for index, webhook in enumerate(pushed):
    holds(SmsDeliveryResult, webhook, f"pushed report webhook {index}")
counts = [report.get("smsCount") for webhook in pushed for report in webhook.get("results", [])]
check(counts and all(count == 2 for count in counts), "a pushed report counts the message's two UCS-2 parts", f"{counts}")

logs = None
while time.monotonic() < deadline:
    logs = raw(api.get_outbound_sms_message_logs_without_preload_content(bulk_id=[sent.bulk_id] if sent else None))
    if logs.get("results"):
        break
    time.sleep(0.2)
if logs is not None:
    holds(SmsLogsResponse, logs, "the logs of a bulk")

reports = {"results": []}
while time.monotonic() < deadline:
    reports = raw(api.get_outbound_sms_message_delivery_reports_without_preload_content(
        bulk_id=pulled.bulk_id if pulled else None
    ))
    if reports.get("results"):
        break
    time.sleep(0.2)
check(bool(reports.get("results")), "a pulled report came", json.dumps(reports)[:200])
holds(SmsDeliveryResult, reports, "pulled reports")

server.shutdown()
print(json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
