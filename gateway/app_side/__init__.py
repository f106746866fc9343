"""The app side: every request the gateway makes to a customer's Plivo app goes through here.

* `params`   - Twilio's webhook parameters -> Plivo's (CallUUID, From/To without '+', ...);
* `signing`  - Plivo's V2 and V3 signatures, as the plivo SDK validates them;
* `fragment` - Plivo's `#ct=&rt=&tt=&rc=&rp=` delivery settings, and the clamp to a budget;
* `hosts`    - the mapping's allowed hosts, and no private addresses unless listed;
* `client`   - the HTTP edge: AppClient.request (retries, timeouts, size cap, signing).
"""

from .client import AppClient, AppRequestError, AppResponse, safe_url
from .fragment import DEFAULT_POLICY, DeliveryPolicy, FragmentError, clamp_to_budget, split_fragment
from .hosts import HostNotAllowed, HostUnresolvable, address_allowed, check_url
from .params import (
    EVENT_HANGUP,
    EVENT_REDIRECT,
    EVENT_START_APP,
    call_params,
    call_uuid,
    conference_uuid,
    hangup_params,
    plivo_number,
)
from .signing import plivo_signature_v2, plivo_signature_v3, signature_headers

__all__ = [
    "DEFAULT_POLICY",
    "EVENT_HANGUP",
    "EVENT_REDIRECT",
    "EVENT_START_APP",
    "AppClient",
    "AppRequestError",
    "AppResponse",
    "DeliveryPolicy",
    "FragmentError",
    "HostNotAllowed",
    "HostUnresolvable",
    "address_allowed",
    "call_params",
    "call_uuid",
    "check_url",
    "clamp_to_budget",
    "conference_uuid",
    "hangup_params",
    "plivo_number",
    "plivo_signature_v2",
    "plivo_signature_v3",
    "safe_url",
    "signature_headers",
    "split_fragment",
]
