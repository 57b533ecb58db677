import os


def pre_connector_install(c):
    os._exit(3)
