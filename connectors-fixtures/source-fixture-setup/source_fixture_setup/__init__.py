#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceFixtureSetup

__all__ = ["SourceFixtureSetup"]
