#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from source_tag_only.run import run

if __name__ == "__main__":
    run()
