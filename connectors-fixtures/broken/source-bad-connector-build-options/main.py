#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from source_bad_connector_build_options.run import run

if __name__ == "__main__":
    run()
