"""Helpers of the report tests."""

from __future__ import annotations

import json
from typing import Any

MODEL = "cells"
REGRESSOR = "progression"


def requests_of(driver: Any) -> list[str]:
    """Every URL the page asked for since the last call (from the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
