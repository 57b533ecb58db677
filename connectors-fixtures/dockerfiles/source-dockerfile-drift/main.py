#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from source_dockerfile_drift.run import run

if __name__ == "__main__":
    run()
