from setuptools import setup
setup(name="shared-lib")
