#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

import os

from setuptools import find_packages, setup

# The connector-build dependency layer runs `pip install .` with ONLY setup.py
# and README.md present (no package source), so nothing here may assume the
# package directory exists: find_packages() simply returns [] in that case.
HERE = os.path.abspath(os.path.dirname(__file__))
README_PATH = os.path.join(HERE, "README.md")
if os.path.exists(README_PATH):
    with open(README_PATH, encoding="utf-8") as readme:
        LONG_DESCRIPTION = readme.read()
else:
    LONG_DESCRIPTION = ""

MAIN_REQUIREMENTS = [
    "requests>=2.28,<3",
]

TEST_REQUIREMENTS = [
    "pytest~=8.0",
]

setup(
    name="source_fixture_setup",
    version="0.1.0",
    description="Test fixture: Airbyte-style Python source connector built from setup.py.",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    author="Connector Build Fixtures",
    author_email="fixtures@example.invalid",
    python_requires=">=3.9",
    packages=find_packages(exclude=("unit_tests", "unit_tests.*", "integration_tests", "integration_tests.*")),
    install_requires=MAIN_REQUIREMENTS,
    extras_require={
        "tests": TEST_REQUIREMENTS,
    },
)
