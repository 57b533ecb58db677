#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

import six

DOCUMENTATION_URL = "https://docs.airbyte.com/integrations/sources/dockerfile-drift"

CONNECTION_SPECIFICATION = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Dockerfile Drift Spec (six " + six.__version__ + ")",
    "type": "object",
    "required": ["api_key"],
    "additionalProperties": True,
    "properties": {
        "api_key": {"type": "string", "title": "API Key", "airbyte_secret": True},
        "start_date": {"type": "string", "title": "Start date", "format": "date"},
    },
}


class SourceDockerfileDrift:
    def spec(self):
        return {
            "type": "SPEC",
            "spec": {
                "documentationUrl": DOCUMENTATION_URL,
                "connectionSpecification": CONNECTION_SPECIFICATION,
            },
        }

    def check(self, config):
        if not config.get("api_key"):
            return {"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": "api_key is required"}}
        return {"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}}

    def discover(self, config):
        return {
            "type": "CATALOG",
            "catalog": {
                "streams": [
                    {
                        "name": "items",
                        "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
                        "supported_sync_modes": ["full_refresh"],
                    }
                ]
            },
        }

    def read(self, config, catalog=None):
        # No records: an empty sync is a valid Airbyte read.
        return iter(())
