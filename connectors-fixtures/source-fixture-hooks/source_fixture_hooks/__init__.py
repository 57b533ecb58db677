#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceFixtureRequirements

__all__ = ["SourceFixtureRequirements"]
