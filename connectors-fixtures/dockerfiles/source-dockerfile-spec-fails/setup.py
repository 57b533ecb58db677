#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

from setuptools import find_packages, setup

# One small dependency, imported by the connector; see the Dockerfile for how it gets
# (or does not get) into the Dockerfile image.
MAIN_REQUIREMENTS = ["six>=1.16"]

setup(
    name="source_dockerfile_spec_fails",
    version="0.2.3",
    description="Test fixture: Dockerfile Spec Fails.",
    author="Connector Build Fixtures",
    author_email="fixtures@example.invalid",
    packages=find_packages(exclude=("unit_tests", "unit_tests.*")),
    install_requires=MAIN_REQUIREMENTS,
)
