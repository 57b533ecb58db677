#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#
