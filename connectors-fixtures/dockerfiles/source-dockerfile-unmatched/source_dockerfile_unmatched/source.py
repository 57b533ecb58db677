#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

# Standard library only: Dockerfile builds cannot reach PyPI, so install_requires is empty.
import json
import os

DOCUMENTATION_URL = "https://docs.airbyte.com/integrations/sources/dockerfile-unmatched"

CONNECTION_SPECIFICATION = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Dockerfile Unmatched Spec",
    "type": "object",
    "required": ["api_key"],
    "additionalProperties": True,
    "properties": {
        "api_key": {"type": "string", "title": "API Key", "airbyte_secret": True},
        "start_date": {"type": "string", "title": "Start date", "format": "date"},
    },
}


def _title():
    # Written by the Dockerfile at build time; the standard build procedure has no such step.
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build_info.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)["title"]
    except OSError:
        return CONNECTION_SPECIFICATION["title"]


class SourceDockerfileUnmatched:
    def spec(self):
        return {
            "type": "SPEC",
            "spec": {
                "documentationUrl": DOCUMENTATION_URL,
                "connectionSpecification": dict(CONNECTION_SPECIFICATION, title=_title()),
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
