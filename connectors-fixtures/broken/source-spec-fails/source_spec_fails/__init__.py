#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceSpecFails

__all__ = ["SourceSpecFails"]
