#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceFixturePoetry

__all__ = ["SourceFixturePoetry"]
