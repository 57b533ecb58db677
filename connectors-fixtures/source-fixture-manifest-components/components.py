"""Custom components of the fixture: a record extractor the manifest names by class."""

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import requests

from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor


@dataclass
class FixtureItemsExtractor(RecordExtractor):
    """Reads records from the response's `items` list, tagging each with its origin."""

    def extract_records(self, response: requests.Response) -> Iterable[Mapping[str, Any]]:
        for item in response.json().get("items", []):
            yield {**item, "origin": "fixture-components"}
