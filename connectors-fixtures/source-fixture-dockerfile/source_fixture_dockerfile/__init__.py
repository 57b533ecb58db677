#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceFixtureDockerfile

__all__ = ["SourceFixtureDockerfile"]
