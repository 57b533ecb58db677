#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from setuptools import setup

# The project is described in pyproject.toml; only the (empty) dependency list lives here.
# No runtime dependencies: the Dockerfile installs inside the image, where PyPI is not
# reachable during `docker build`.
MAIN_REQUIREMENTS = []

setup(install_requires=MAIN_REQUIREMENTS)
