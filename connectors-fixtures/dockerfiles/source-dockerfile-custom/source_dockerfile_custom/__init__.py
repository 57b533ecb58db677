#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from .source import SourceDockerfileCustom

__all__ = ["SourceDockerfileCustom"]
