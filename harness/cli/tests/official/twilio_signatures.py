"""Twilio's official request validator (twilio-python) as the reference for callback
signatures: reads cases as JSON on stdin — `[{"token", "signed", "seen", "params"}]` —
and writes, for each, the signature Twilio computes over the URL it called (`signed`) and
whether the official `RequestValidator.validate` accepts it at the URL the receiver sees
(`seen`): `[{"signature", "official"}]`.
"""
import json
import sys

from twilio.request_validator import RequestValidator

answers = []
for case in json.load(sys.stdin):
    validator = RequestValidator(case["token"])
    signature = validator.compute_signature(case["signed"], case["params"])
    answers.append({"signature": signature, "official": validator.validate(case["seen"], case["params"], signature)})
json.dump(answers, sys.stdout)
