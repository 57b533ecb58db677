"""Custom components with a syntax error on line 6."""

from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor


class FixtureItemsExtractor(RecordExtractor)
    pass
