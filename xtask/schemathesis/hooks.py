"""Schemathesis hooks for `cargo xtask schemathesis` (loaded through SCHEMATHESIS_HOOKS).

The coverage phase takes no dictionaries: it would send `0` for the catalog and get 404 on every
boundary case of a body or a query. This hook puts the real catalog and a seeded customer in
the path of every coverage case, and a fresh `Idempotency-Key` in its headers, except in those
that probe that very parameter. The run's values come from the environment xtask sets:
KIOSK_CATALOG and KIOSK_CUSTOMER_1, KIOSK_CUSTOMER_2, ...
"""

import os
import uuid

import schemathesis
from schemathesis.generation.meta import TestPhase


def _environment():
    catalog = os.environ.get("KIOSK_CATALOG")
    customers = [
        value
        for name, value in sorted(os.environ.items())
        if name.startswith("KIOSK_CUSTOMER_")
    ]
    if not catalog or not customers:
        raise RuntimeError(
            "KIOSK_CATALOG and KIOSK_CUSTOMER_1.. are not set: run `cargo xtask schemathesis`"
        )
    return catalog, customers


CATALOG, CUSTOMERS = _environment()


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.COVERAGE or not case.path_parameters:
        return
    probed = getattr(meta.phase.data, "parameter", None)
    if "catalog_id" in case.path_parameters and probed != "catalog_id":
        case.path_parameters["catalog_id"] = CATALOG
    if "customer_id" in case.path_parameters and probed != "customer_id":
        case.path_parameters["customer_id"] = CUSTOMERS[len(str(case.body)) % len(CUSTOMERS)]
    # One example key for every case would make most of them replays or 422 reuses.
    if case.headers and "Idempotency-Key" in case.headers and probed != "Idempotency-Key":
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
