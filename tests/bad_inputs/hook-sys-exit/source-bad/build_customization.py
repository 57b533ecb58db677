import sys


def pre_connector_install(c):
    sys.exit(3)
