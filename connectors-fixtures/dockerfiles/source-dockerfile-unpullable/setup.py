#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from setuptools import find_packages, setup

# No runtime dependencies: the Dockerfile installs inside the image, where PyPI is not
# reachable during `docker build`.
MAIN_REQUIREMENTS = []

setup(
    name="source_dockerfile_unpullable",
    version="0.3.7",
    description="Test fixture: Dockerfile Unpullable.",
    author="Connector Build Fixtures",
    author_email="fixtures@example.invalid",
    packages=find_packages(exclude=("unit_tests", "unit_tests.*")),
    install_requires=MAIN_REQUIREMENTS,
)
