#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from setuptools import find_packages, setup

# Deliberately no runtime dependencies: the Dockerfile runs `pip install .`
# inside the base image, where PyPI may not be reachable / trusted.
MAIN_REQUIREMENTS = []

setup(
    name="source_fixture_dockerfile",
    version="0.1.0",
    description="Test fixture: Airbyte-style source built from a legacy Dockerfile.",
    author="Connector Build Fixtures",
    author_email="fixtures@example.invalid",
    packages=find_packages(exclude=("unit_tests", "unit_tests.*")),
    install_requires=MAIN_REQUIREMENTS,
)
