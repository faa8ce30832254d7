"""schemathesis hooks for the pgfleet run (loaded by scripts/schemathesis via SCHEMATHESIS_HOOKS).

* Idempotency-Key: every POST documents this optional header. Generated keys repeat a lot
  ("0", "A", ...) across requests with different bodies, and the server rightly answers those
  409 (the same key with another body), so most POSTs would never reach their handler. A valid
  generated key is therefore made unique per request; invalid ones (empty, too long, not
  printable ASCII) are sent as generated, so the header's rejection path is still exercised.
* The run's own credential: the stateful phase feeds ids from responses into later requests,
  and `GET /v1/me` or the service-token list hand it the id of the token the run
  authenticates with. Deleting that token would turn every later request into a 401 and the
  rest of the run into nothing, so a DELETE of it (id in PGFLEET_SCHEMATHESIS_TOKEN_ID) is
  sent for a token that does not exist instead (a 404, still checked).
"""

import os
import uuid

import schemathesis

PROTECTED_TOKEN_ID = os.environ.get("PGFLEET_SCHEMATHESIS_TOKEN_ID", "")


def _valid_key(value):
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 255
        and all(0x20 <= ord(c) < 0x7F for c in value)
    )


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if headers:
        for name in list(headers):
            if name.lower() == "idempotency-key" and _valid_key(headers[name]):
                headers[name] = f"schemathesis-{uuid.uuid4()}"
    path_parameters = case.path_parameters
    if (
        PROTECTED_TOKEN_ID
        and case.method.upper() == "DELETE"
        and path_parameters
        and path_parameters.get("serviceTokenId") == PROTECTED_TOKEN_ID
    ):
        path_parameters["serviceTokenId"] = "stk_protectedbyhook00000"
