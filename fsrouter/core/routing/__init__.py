"""The routing core, one job per module around one book of state (``router.py`` tells the flow):

- ``router.py``: the ``Router`` facade (``handle``, ``load_rules``, ``snapshot``, ``explain``);
- ``book.py``: what the router knows (calls, agents, offers, the queue configurations in force);
- ``callers.py``: a caller's life around the queue (entry, overflow, escalation, hold, hang-up, maximum wait);
- ``dispatch.py``: who is offered which call, and why (traces);
- ``offers.py``: ringing, answer, bridge, and every way an offer ends (the originate/bridge race);
- ``presence.py``: agent states, operator actions, registration, wrap-up;
- ``reconcile.py``: audits and heals against what FreeSWITCH really has;
- ``records.py``: the records every call, offer and agent state change ends with, and the views.
"""

from fsrouter.core.routing.book import Heal
from fsrouter.core.routing.offers import DEFAULT_BRIDGE_TIMEOUT
from fsrouter.core.routing.presence import REMOVED_FROM_RULES
from fsrouter.core.routing.router import Router

__all__ = ["DEFAULT_BRIDGE_TIMEOUT", "REMOVED_FROM_RULES", "Heal", "Router"]
