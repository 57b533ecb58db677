#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceBadConnectorBuildOptions

__all__ = ["SourceBadConnectorBuildOptions"]
