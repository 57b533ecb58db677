#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

# Imported at import time on purpose: a missing dependency fails `spec`.
import dateutil.parser
import six

DOCUMENTATION_URL = "https://example.invalid"

CONNECTION_SPECIFICATION = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Fixture Uv Spec",
    "type": "object",
    "required": ["api_key"],
    "additionalProperties": True,
    "properties": {
        "api_key": {"type": "string", "title": "API Key", "airbyte_secret": True},
    },
}


class SourceFixtureUv:
    def spec(self):
        return {
            "type": "SPEC",
            "spec": {
                "documentationUrl": DOCUMENTATION_URL,
                "connectionSpecification": CONNECTION_SPECIFICATION,
            },
        }

    def check(self, config):
        dateutil.parser.isoparse("2024-01-01")
        six.ensure_str(config.get("api_key", ""))
        if not config.get("api_key"):
            return {"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": "api_key is required"}}
        return {"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}}

    def discover(self, config):
        return {
            "type": "CATALOG",
            "catalog": {
                "streams": [
                    {
                        "name": "fixture_items",
                        "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
                        "supported_sync_modes": ["full_refresh"],
                    }
                ]
            },
        }

    def read(self, config, catalog=None):
        # No records: an empty sync is a valid Airbyte read.
        return iter(())
