#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceTagOnly

__all__ = ["SourceTagOnly"]
