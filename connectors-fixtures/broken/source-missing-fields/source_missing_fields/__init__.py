#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceMissingFields

__all__ = ["SourceMissingFields"]
