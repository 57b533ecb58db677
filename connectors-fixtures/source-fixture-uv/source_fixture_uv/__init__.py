#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceFixtureUv

__all__ = ["SourceFixtureUv"]
