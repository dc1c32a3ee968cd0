"""Parses Prometheus metrics text from stdin with the official client's parsers.

Both the classic text-format parser and the stricter OpenMetrics parser must accept it (the
OpenMetrics one also checks histogram buckets, counter suffixes and the final `# EOF`).
Prints every sample as JSON: [{"name", "labels", "value", "type"}, ...].
"""

import json
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

text = sys.stdin.read()
list(openmetrics_families(text))
samples = [
    {"name": s.name, "labels": s.labels, "value": s.value, "type": family.type}
    for family in text_families(text)
    for s in family.samples
]
json.dump(samples, sys.stdout)
