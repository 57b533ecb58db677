#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from setuptools import find_packages, setup

setup(
    name="source_tag_only",
    version="0.1.0",
    description="Broken test fixture for connector-build.",
    packages=find_packages(exclude=("unit_tests", "unit_tests.*")),
    install_requires=[],
)
