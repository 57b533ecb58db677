#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

# Third-party imports at import time on purpose: if the dependency layer is
# incomplete, `python main.py spec` fails with ModuleNotFoundError.
import attrs
import dateutil.parser

DOCUMENTATION_URL = "https://example.invalid"

CONNECTION_SPECIFICATION = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Fixture Poetry Spec",
    "type": "object",
    "required": ["api_key", "start_date"],
    "additionalProperties": True,
    "properties": {
        "api_key": {"type": "string", "title": "API Key", "airbyte_secret": True},
        "start_date": {"type": "string", "title": "Start Date", "format": "date-time"},
    },
}


@attrs.define
class Config:
    api_key: str
    start_date: str

    def parsed_start_date(self):
        return dateutil.parser.isoparse(self.start_date)


class SourceFixturePoetry:
    def spec(self):
        return {
            "type": "SPEC",
            "spec": {
                "documentationUrl": DOCUMENTATION_URL,
                "connectionSpecification": CONNECTION_SPECIFICATION,
            },
        }

    def check(self, config):
        try:
            Config(api_key=config["api_key"], start_date=config["start_date"]).parsed_start_date()
        except Exception as exc:  # noqa: BLE001 - report any config problem as FAILED
            return {"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": repr(exc)}}
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
