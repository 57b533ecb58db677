#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

import importlib
import os

from source_dockerfile_custom.run import launch

if __name__ == "__main__":
    # As the CDK's entrypoint does: the image's environment names the implementation.
    module = importlib.import_module(os.environ["AIRBYTE_IMPL_MODULE"])
    launch(getattr(module, os.environ["AIRBYTE_IMPL_PATH"])())
