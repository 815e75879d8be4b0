"""Reading Prometheus' text format back: what a scrape says, as {(name, labels): value}."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def samples(text: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when the scrape has none (a counter not yet counted)."""
    return found.get((name, frozenset(labels.items())), 0.0)


def exported_names(text: str) -> set[str]:
    """Every series name the scrape declares, counted yet or not (a histogram's
    `_bucket`, `_sum`, `_count`; a counter's `_total`)."""
    names = set()
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                    "summary": ("", "_sum", "_count")}.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
        names.update(sample.name for sample in family.samples)
    return names


def scrape(client, **environ) -> Samples:
    response = client.http.get("/metrics", environ_base=environ)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return samples(response.get_data(as_text=True))
